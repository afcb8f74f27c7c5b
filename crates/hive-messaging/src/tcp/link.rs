//! One TCP link: a writer, a reader and an announcer task around a
//! connection, and the state they share.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hive_types::{AgentId, HiveError, HiveResult};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::reader::read_loop;
use super::security::{Handshake, Role, Stream};
use super::state::LinkState;
use super::writer::write_loop;
use super::{PartialBudget, TcpConfig};
use crate::registry::LocalChanges;
use crate::transport::{Counters, InFlight, LinkQueue, TransportStats};
use crate::wire::{Control, FrameDecoder, FrameEncoder};
use crate::Communicator;

/// What a link did, returned when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkReport {
    /// Its counters: sent, acknowledged, unknown, not sent, received...
    pub stats: TransportStats,
    /// Why the link ended, if not by a graceful close.
    pub error: Option<String>,
}

impl LinkReport {
    /// Messages the link accepted and did not see acknowledged: reported
    /// unknown or not sent.
    pub fn undelivered(&self) -> u64 {
        self.stats.undelivered()
    }
}

use hive_types::sync::lock;

/// A connection to a peer process; see the [module docs](super).
pub struct TcpLink {
    state: Arc<LinkState>,
    peer: SocketAddr,
    close: Mutex<Option<oneshot::Sender<()>>>,
    report: watch::Receiver<Option<LinkReport>>,
}

impl TcpLink {
    /// Starts a link over an established (and, with TLS, encrypted)
    /// connection on the current tokio runtime.
    pub(crate) fn start(
        comm: &Communicator,
        stream: Stream,
        peer: SocketAddr,
        config: TcpConfig,
        role: Role,
        budget: Arc<PartialBudget>,
    ) -> HiveResult<TcpLink> {
        let shared = comm.shared().clone();
        let mut decoder = FrameDecoder::new(config.limits)?;
        for d in &config.dictionaries {
            decoder.add_dictionary(d)?;
        }
        let encoder = FrameEncoder::new(config.encoder.clone())?;
        let handshake = Handshake::new(config.security.token.clone(), role)?;
        let queue = LinkQueue::open(&shared, config.write_queue, config.write_queue_bytes);
        let state = Arc::new(LinkState {
            shared,
            queue,
            in_flight: Mutex::new(InFlight::new(config.unacked_frames, config.unacked_bytes)),
            config,
            counters: Counters::new("tcp"),
            progress: Notify::new(),
            handshake: Mutex::new(handshake),
            ready: AtomicBool::new(false),
            ready_changed: Notify::new(),
            remote_agents: Mutex::new(HashSet::new()),
            closing: AtomicBool::new(false),
            budget,
        });
        let (close, close_rx) = oneshot::channel();
        let (report_tx, report) = watch::channel(None);
        tokio::spawn(supervise(
            state.clone(),
            stream,
            encoder,
            decoder,
            comm.sender(),
            close_rx,
            report_tx,
        ));
        Ok(TcpLink {
            state,
            peer,
            close: Mutex::new(Some(close)),
            report,
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Agents the peer announced.
    pub fn remote_agents(&self) -> Vec<AgentId> {
        lock(&self.state.remote_agents).iter().copied().collect()
    }

    /// The link's counters so far.
    pub fn stats(&self) -> TransportStats {
        self.state.counters.snapshot()
    }

    /// Messages acknowledged by the peer so far.
    pub fn acked(&self) -> u64 {
        self.stats().messages_acked
    }

    /// Whether the handshake completed (data can flow).
    pub fn is_ready(&self) -> bool {
        self.state.ready.load(Ordering::Acquire)
    }

    /// Waits until the handshake completed; an error if the link ended
    /// first (the peer refused it) or `within` passed.
    pub(crate) async fn wait_ready(&self, within: std::time::Duration) -> HiveResult<()> {
        let deadline = tokio::time::Instant::now() + within;
        let mut report = self.report.clone();
        loop {
            let notified = self.state.ready_changed.notified();
            if self.is_ready() {
                return Ok(());
            }
            if let Some(r) = report.borrow().clone() {
                let why = r.error.unwrap_or_else(|| "closed".into());
                return Err(HiveError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("the link handshake failed: {why}"),
                )));
            }
            tokio::select! {
                _ = notified => {}
                _ = report.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(HiveError::Timeout { what: "link handshake", after: within });
                }
            }
        }
    }

    /// Whether the link has ended.
    pub fn is_closed(&self) -> bool {
        self.report.borrow().is_some()
    }

    /// Closes gracefully (see the module docs) and reports.
    pub async fn close(self) -> LinkReport {
        self.close_shared().await
    }

    pub(crate) async fn close_shared(&self) -> LinkReport {
        if let Some(close) = lock(&self.close).take() {
            let _ = close.send(());
        }
        self.wait_finished().await
    }

    /// Waits until the link ends by itself (the peer closed or failed).
    pub async fn finished(self) -> LinkReport {
        self.wait_finished().await
    }

    pub(crate) async fn wait_finished(&self) -> LinkReport {
        let mut report = self.report.clone();
        loop {
            if let Some(r) = report.borrow().clone() {
                return r;
            }
            if report.changed().await.is_err() {
                return report.borrow().clone().unwrap_or_default();
            }
        }
    }
}

impl fmt::Debug for TcpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpLink")
            .field("peer", &self.peer)
            .field("ready", &self.is_ready())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Runs the three tasks until one ends (or a close is asked for), then
/// accounts for every message and reports.
async fn supervise(
    state: Arc<LinkState>,
    stream: Stream,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    local: crate::Sender,
    close_rx: oneshot::Receiver<()>,
    report: watch::Sender<Option<LinkReport>>,
) {
    let (read, write) = tokio::io::split(stream);
    let (control_tx, control_rx) = mpsc::channel::<Control>(4096);
    let mut writer = tokio::spawn(write_loop(state.clone(), write, control_rx, encoder));
    let mut reader = tokio::spawn(read_loop(
        state.clone(),
        read,
        decoder,
        local,
        control_tx.clone(),
    ));
    let announcer = tokio::spawn(announce(state.clone(), control_tx));
    let error = tokio::select! {
        r = &mut reader => {
            writer.abort();
            let _ = (&mut writer).await;
            flatten(r).err()
        }
        r = &mut writer => {
            reader.abort();
            let _ = (&mut reader).await;
            flatten(r).err()
        }
        _ = close_rx => {
            // Graceful: no new sends to the peer, flush what senders hold,
            // close the queue; the writer drains it and waits for acks.
            state.closing.store(true, Ordering::SeqCst);
            state.queue.stop_accepting();
            let outcome = flatten((&mut writer).await).err();
            reader.abort();
            let _ = (&mut reader).await;
            outcome
        }
    };
    announcer.abort();
    let in_flight = lock(&state.in_flight).drain();
    state.queue.finish(in_flight, &state.counters).await;
    lock(&state.remote_agents).clear();
    let _ = report.send(Some(LinkReport {
        stats: state.counters.snapshot(),
        error: error.map(|e| e.to_string()),
    }));
}

fn flatten(r: Result<HiveResult<()>, tokio::task::JoinError>) -> HiveResult<()> {
    match r {
        Ok(inner) => inner,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(HiveError::Undeliverable {
            reason: if e.is_panic() {
                "link task panicked"
            } else {
                "link task failed"
            },
        }),
    }
}

/// Tells the peer which agents this process hosts, as that changes: from
/// the registry's log of local changes (a full comparison only when it fell
/// too far behind). Starts once the handshake is done: the peer refuses
/// anything else before it.
async fn announce(state: Arc<LinkState>, control: mpsc::Sender<Control>) {
    loop {
        let became_ready = state.ready_changed.notified();
        if state.ready.load(Ordering::Acquire) {
            break;
        }
        became_ready.await;
    }
    let registry = &state.shared.registry;
    let mut announced: HashSet<AgentId> = HashSet::new();
    let mut cursor: u64;
    let mut changes = LocalChanges::Resync(registry.local_sequence());
    loop {
        let listener = registry.locals_changed.listen();
        let mut out = Vec::new();
        match changes {
            LocalChanges::Since(list, next) => {
                for (agent, joined) in list {
                    match joined {
                        true if announced.insert(agent) => out.push(Control::Hosts(agent)),
                        false if announced.remove(&agent) => out.push(Control::Leaves(agent)),
                        _ => {}
                    }
                }
                cursor = next;
            }
            LocalChanges::Resync(next) => {
                let now: HashSet<AgentId> = state.shared.hosted().into_iter().collect();
                out.extend(now.difference(&announced).map(|a| Control::Hosts(*a)));
                out.extend(announced.difference(&now).map(|a| Control::Leaves(*a)));
                announced = now;
                cursor = next;
            }
        }
        for c in out {
            if control.send(c).await.is_err() {
                return;
            }
        }
        if matches!(registry.local_changes_since(cursor), LocalChanges::Since(ref l, _) if l.is_empty())
        {
            listener.await;
        }
        changes = registry.local_changes_since(cursor);
    }
}
