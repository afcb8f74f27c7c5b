//! One TCP link: a writer, a reader and an announcer task around a socket.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hive_types::{AgentId, HiveError, HiveResult, Message, Recipient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

use super::TcpConfig;
use crate::inbox::Inbox;
use crate::mailbox::Mailbox;
use crate::shared::Shared;
use crate::wire::{Control, FrameBody, FrameDecoder, FrameEncoder, VERSION};
use crate::UndeliveredReason;
use crate::{Communicator, Sender};

/// What a link did, returned when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkReport {
    /// Message frames written.
    pub frames_sent: u64,
    /// Messages written.
    pub messages_sent: u64,
    /// Messages the peer acknowledged (accepted into its mailboxes).
    pub messages_acked: u64,
    /// Messages received from the peer.
    pub messages_received: u64,
    /// Messages reported undeliverable when the link ended: unacknowledged
    /// frames plus what was still queued.
    pub undelivered: u64,
    /// Raw bytes before compression, written.
    pub raw_bytes: u64,
    /// Bytes on the wire, headers included, written.
    pub wire_bytes: u64,
    /// Why the link ended, if not by a graceful close.
    pub error: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State the link's tasks share.
struct Link {
    shared: Arc<Shared>,
    inbox: Arc<Inbox>,
    config: TcpConfig,
    /// Frames written and not acknowledged, with their messages.
    unacked: Mutex<VecDeque<(u64, Vec<Message>)>>,
    acked: Notify,
    remote_agents: Mutex<HashSet<AgentId>>,
    frames_sent: AtomicU64,
    messages_sent: AtomicU64,
    messages_acked: AtomicU64,
    messages_received: AtomicU64,
    raw_bytes: AtomicU64,
    wire_bytes: AtomicU64,
    closing: AtomicBool,
}

/// A connection to a peer process; see the [module docs](super).
pub struct TcpLink {
    link: Arc<Link>,
    peer: SocketAddr,
    close: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<LinkReport>,
}

impl TcpLink {
    /// Starts a link over an established stream (either side of it).
    pub fn start(comm: &Communicator, stream: TcpStream, config: TcpConfig) -> HiveResult<TcpLink> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        let shared = comm.shared().clone();
        let id = AgentId::random();
        let inbox = Arc::new(Inbox::new_remote(id, config.write_queue.max(1)));
        shared.registry.add_route(id, &inbox);
        let outbox = Mailbox::new(inbox.clone(), shared.clone());
        let mut decoder = FrameDecoder::new(config.limits)?;
        for d in &config.dictionaries {
            decoder.add_dictionary(d)?;
        }
        let encoder = FrameEncoder::new(config.encoder.clone())?;
        let link = Arc::new(Link {
            shared,
            inbox,
            config,
            unacked: Mutex::new(VecDeque::new()),
            acked: Notify::new(),
            remote_agents: Mutex::new(HashSet::new()),
            frames_sent: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_acked: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            raw_bytes: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        });
        let (close, close_rx) = oneshot::channel();
        let done = tokio::spawn(supervise(
            link.clone(),
            stream,
            outbox,
            encoder,
            decoder,
            comm.sender(),
            close_rx,
        ));
        Ok(TcpLink {
            link,
            peer,
            close: Some(close),
            done,
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Agents the peer announced.
    pub fn remote_agents(&self) -> Vec<AgentId> {
        lock(&self.link.remote_agents).iter().copied().collect()
    }

    /// Messages acknowledged by the peer so far.
    pub fn acked(&self) -> u64 {
        self.link.messages_acked.load(Ordering::Relaxed)
    }

    /// Whether the link has ended.
    pub fn is_closed(&self) -> bool {
        self.done.is_finished()
    }

    /// Closes gracefully (see the module docs) and reports.
    pub async fn close(mut self) -> LinkReport {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        self.finished().await
    }

    /// Waits until the link ends by itself (the peer closed or failed).
    pub async fn finished(self) -> LinkReport {
        match self.done.await {
            Ok(report) => report,
            Err(e) => LinkReport {
                error: Some(format!("link task failed: {e}")),
                ..LinkReport::default()
            },
        }
    }
}

impl fmt::Debug for TcpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpLink")
            .field("peer", &self.peer)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Runs the three tasks until one ends, then tears the link down.
async fn supervise(
    link: Arc<Link>,
    stream: TcpStream,
    outbox: Mailbox,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    local: Sender,
    close_rx: oneshot::Receiver<()>,
) -> LinkReport {
    let (read, write) = stream.into_split();
    let (control_tx, control_rx) = mpsc::channel::<Control>(1024);
    let mut writer = tokio::spawn(write_loop(link.clone(), outbox, write, control_rx, encoder));
    let mut reader = tokio::spawn(read_loop(
        link.clone(),
        read,
        decoder,
        local,
        control_tx.clone(),
    ));
    let announcer = tokio::spawn(announce(link.clone(), control_tx));
    let error = tokio::select! {
        r = &mut reader => {
            writer.abort();
            let _ = (&mut writer).await; // its mailbox is dropped (and reported) by now
            flatten(r).err()
        }
        r = &mut writer => {
            reader.abort();
            let _ = (&mut reader).await;
            flatten(r).err()
        }
        _ = close_rx => {
            // Graceful: no new sends to the peer, flush what senders hold,
            // stop the queue; the writer drains it and waits for acks.
            link.closing.store(true, Ordering::SeqCst);
            link.shared.registry.remove_routes_to(&link.inbox);
            for core in link.shared.live_senders() {
                core.flush_all(&link.shared, crate::FlushReason::Close);
            }
            link.inbox.close();
            let outcome = flatten((&mut writer).await).err();
            reader.abort();
            let _ = (&mut reader).await;
            outcome
        }
    };
    announcer.abort();
    teardown(&link, error)
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

/// Routes gone, queue closed, unacknowledged messages reported.
fn teardown(link: &Link, error: Option<HiveError>) -> LinkReport {
    link.shared.registry.remove_routes_to(&link.inbox);
    link.inbox.close();
    let unacked: Vec<Message> = lock(&link.unacked).drain(..).flat_map(|(_, m)| m).collect();
    let mut undelivered = unacked.len() as u64;
    link.shared
        .undeliverable(unacked, UndeliveredReason::Unknown);
    let queued: Vec<Message> = link
        .inbox
        .drain()
        .into_iter()
        .flat_map(|b| b.messages)
        .collect();
    undelivered += queued.len() as u64;
    link.shared
        .undeliverable(queued, UndeliveredReason::NotSent);
    LinkReport {
        frames_sent: link.frames_sent.load(Ordering::Relaxed),
        messages_sent: link.messages_sent.load(Ordering::Relaxed),
        messages_acked: link.messages_acked.load(Ordering::Relaxed),
        messages_received: link.messages_received.load(Ordering::Relaxed),
        undelivered,
        raw_bytes: link.raw_bytes.load(Ordering::Relaxed),
        wire_bytes: link.wire_bytes.load(Ordering::Relaxed),
        error: error.map(|e| e.to_string()),
    }
}

async fn write_loop(
    link: Arc<Link>,
    mut outbox: Mailbox,
    mut socket: OwnedWriteHalf,
    mut control: mpsc::Receiver<Control>,
    mut encoder: FrameEncoder,
) -> HiveResult<()> {
    let mut sequence = 0u64;
    let mut frame = Vec::new();
    let mut batch = Vec::with_capacity(link.config.frame_messages);
    let mut controls = vec![Control::Hello { version: VERSION }];
    let mut control_open = true;
    loop {
        if !controls.is_empty() {
            frame.clear();
            encoder.encode_control(&controls, 0, &mut frame)?;
            socket.write_all(&frame).await?;
            controls.clear();
        }
        while lock(&link.unacked).len() >= link.config.unacked_frames.max(1) {
            let acked = link.acked.notified();
            if lock(&link.unacked).len() < link.config.unacked_frames.max(1) {
                break;
            }
            acked.await;
        }
        tokio::select! {
            biased;
            c = control.recv(), if control_open => {
                match c {
                    Some(c) => {
                        controls.push(c);
                        while let Ok(more) = control.try_recv() {
                            controls.push(more);
                        }
                    }
                    None => control_open = false,
                }
            }
            r = outbox.recv_many_async(&mut batch, link.config.frame_messages) => {
                if r.is_err() {
                    break; // closed and drained: graceful end
                }
            }
        }
        while !batch.is_empty() {
            let take = frame_cut(&batch, link.config.frame_bytes);
            let messages: Vec<Message> = batch.drain(..take).collect();
            sequence += 1;
            frame.clear();
            let info = encoder.encode_messages(&messages, sequence, &mut frame)?;
            lock(&link.unacked).push_back((sequence, messages));
            socket.write_all(&frame).await?;
            link.frames_sent.fetch_add(1, Ordering::Relaxed);
            link.messages_sent
                .fetch_add(info.records as u64, Ordering::Relaxed);
            link.raw_bytes
                .fetch_add(info.raw_len as u64, Ordering::Relaxed);
            link.wire_bytes
                .fetch_add(info.frame_len as u64, Ordering::Relaxed);
        }
    }
    // Graceful close: wait (bounded) for the last acknowledgements.
    let waited = tokio::time::timeout(link.config.close_timeout, async {
        loop {
            let acked = link.acked.notified();
            if lock(&link.unacked).is_empty() {
                return;
            }
            acked.await;
        }
    })
    .await;
    let _ = socket.shutdown().await;
    match waited {
        Ok(()) => Ok(()),
        Err(_) => Err(HiveError::Timeout {
            what: "acknowledgements at close",
            after: link.config.close_timeout,
        }),
    }
}

/// How many leading messages fit in one frame of at most `bytes` raw bytes
/// (at least one: a larger message travels alone).
fn frame_cut(batch: &[Message], bytes: usize) -> usize {
    let mut total = 0;
    for (i, m) in batch.iter().enumerate() {
        total += crate::wire::message_len(m);
        if total > bytes && i > 0 {
            return i;
        }
    }
    batch.len()
}

async fn read_loop(
    link: Arc<Link>,
    mut socket: OwnedReadHalf,
    mut decoder: FrameDecoder,
    local: Sender,
    control: mpsc::Sender<Control>,
) -> HiveResult<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let need = decoder.frame_len(&buf)?;
        match need {
            Some(len) if buf.len() >= len => {
                let decoded = decoder.decode(buf.get(..len).unwrap_or(&[]))?;
                buf.drain(..len);
                match decoded.body {
                    FrameBody::Messages(messages) => {
                        deliver(&link, &local, messages).await;
                        if control.send(Control::Ack(decoded.sequence)).await.is_err() {
                            return Ok(());
                        }
                    }
                    FrameBody::Control(records) => handle_control(&link, records)?,
                }
            }
            _ => {
                buf.reserve(64 * 1024);
                if socket.read_buf(&mut buf).await? == 0 {
                    return if buf.is_empty() {
                        Err(HiveError::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "peer closed the connection",
                        )))
                    } else {
                        Err(HiveError::InvalidFrame(hive_types::FrameError::Truncated {
                            needed: need.unwrap_or(crate::wire::HEADER_LEN) as u64,
                            available: buf.len() as u64,
                        }))
                    };
                }
            }
        }
    }
}

/// Hands received messages to local mailboxes only; what cannot be
/// delivered here is reported on this side.
async fn deliver(link: &Link, local: &Sender, messages: Vec<Message>) {
    link.messages_received
        .fetch_add(messages.len() as u64, Ordering::Relaxed);
    for m in messages {
        match m.recipient {
            Recipient::Agent(to) => match link.shared.registry.get(&to) {
                Some(inbox) if !inbox.remote => {
                    if let Err(refused) = local.send_to_async(to, m).await {
                        link.shared
                            .undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
                    }
                }
                _ => link
                    .shared
                    .undeliverable([m], UndeliveredReason::NoRecipient),
            },
            Recipient::Broadcast => {
                for inbox in link.shared.registry.inboxes() {
                    if inbox.remote || inbox.agent == m.sender {
                        continue;
                    }
                    if let Err(refused) = local.send_to_async(inbox.agent, m.clone()).await {
                        link.shared
                            .undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
                    }
                }
            }
        }
    }
    local.flush();
}

fn handle_control(link: &Link, records: Vec<Control>) -> HiveResult<()> {
    for c in records {
        match c {
            Control::Hosts(agent) => {
                if !link.closing.load(Ordering::SeqCst)
                    && link.shared.registry.add_route(agent, &link.inbox)
                {
                    lock(&link.remote_agents).insert(agent);
                }
            }
            Control::Leaves(agent) => {
                link.shared.registry.remove_route(&agent, &link.inbox);
                lock(&link.remote_agents).remove(&agent);
            }
            Control::Ack(sequence) => {
                let mut unacked = lock(&link.unacked);
                while unacked.front().is_some_and(|(s, _)| *s <= sequence) {
                    if let Some((_, messages)) = unacked.pop_front() {
                        link.messages_acked
                            .fetch_add(messages.len() as u64, Ordering::Relaxed);
                    }
                }
                drop(unacked);
                link.acked.notify_one();
            }
            Control::Hello { version } => {
                if version < 1 {
                    return Err(hive_types::FrameError::UnsupportedVersion(version).into());
                }
            }
        }
    }
    Ok(())
}

/// Tells the peer which agents this process hosts, as that changes.
async fn announce(link: Arc<Link>, control: mpsc::Sender<Control>) {
    let mut announced: HashSet<AgentId> = HashSet::new();
    loop {
        let changed = link.shared.registry.changed.listen();
        let now: HashSet<AgentId> = link.shared.registry.local_agents().into_iter().collect();
        for a in now.difference(&announced) {
            if control.send(Control::Hosts(*a)).await.is_err() {
                return;
            }
        }
        for a in announced.difference(&now) {
            if control.send(Control::Leaves(*a)).await.is_err() {
                return;
            }
        }
        announced = now;
        changed.await;
    }
}
