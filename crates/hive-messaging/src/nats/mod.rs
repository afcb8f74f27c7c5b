//! NATS transport (feature `nats`): swarms that span machines.
//!
//! A [`NatsTransport`] joins the local [`Communicator`]
//! to a NATS server or cluster. Every process subscribes to the subjects of
//! the agents it hosts; a message to an agent that is not in this process
//! goes to that agent's subject. No registry is needed: NATS routes by
//! subject, across a cluster too.
//!
//! ## Subjects
//!
//! | subject | carries |
//! |---|---|
//! | `hive.<swarm>.agent.<agent id>` | frames for one agent (hyphenated UUID) |
//! | `hive.<swarm>.broadcast` | broadcasts: every process delivers to its agents |
//! | `hive.<swarm>.group.<name>` | a queue group: one member process gets each frame |
//!
//! Each NATS message carries one hive frame (`docs/wire-format.md`): batched
//! per subject, compressed above the threshold, never above the server's
//! `max_payload` (a batch is split instead; a single message larger than
//! `max_payload` cannot travel and is reported).
//!
//! ## What is guaranteed
//!
//! Core NATS delivers at most once. On top of it every frame to an agent or
//! a group is published with a reply subject, and the receiving process
//! answers once all its messages were accepted by local mailboxes. So:
//!
//! - every message to an agent or group is either **acknowledged** or
//!   **reported**: handed to `Communicator::take_undelivered`, counted in
//!   `stats().undeliverable` and in [`NatsStats::reported`]. Reasons: nobody
//!   subscribes to the subject (NATS "no responders"), no acknowledgement
//!   within `ack_timeout` (a server restart, a network split, a crashed
//!   receiver), or a message larger than `max_payload`. None vanishes silently.
//! - a reported message *may* still have been delivered if only its
//!   acknowledgement was lost: at most once unless the application resends.
//! - while the client is disconnected, async-nats reconnects by itself and
//!   buffers at most `client_capacity` commands; beyond that, sends wait
//!   (bounded), and frames not acknowledged in time are reported.
//! - **broadcasts** are published without acknowledgement (the number of
//!   receiving processes is unknown): at most once, and lost if published
//!   while no process subscribes.
//! - order per (sender handle, recipient) holds while the connection holds.
//!
//! Acknowledged delivery across restarts of the *receiver* (at least once)
//! would need JetStream; this transport does not use it.

mod inbound;
mod outbound;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hive_types::{AgentId, HiveError, HiveResult};

use crate::inbox::Inbox;
use crate::mailbox::Mailbox;
use crate::shared::Shared;
use crate::wire::{Dictionary, EncoderConfig, Limits};
use crate::Communicator;

/// How the NATS transport names subjects, encodes and bounds.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Name of the swarm: the second token of every subject.
    pub swarm: String,
    /// Compression of outgoing frames.
    pub encoder: EncoderConfig,
    /// Limits on incoming frames.
    pub limits: Limits,
    /// Dictionaries incoming frames may use.
    pub dictionaries: Vec<Dictionary>,
    /// Messages the transport's send queue holds (backpressure bound).
    pub write_queue: usize,
    /// Most messages per frame (and the server's `max_payload` in bytes).
    pub frame_messages: usize,
    /// Frames published and not yet acknowledged before publishing waits.
    pub in_flight: usize,
    /// How long a frame may wait for its acknowledgement before its
    /// messages are reported.
    pub ack_timeout: Duration,
    /// Commands async-nats buffers while disconnected.
    pub client_capacity: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            swarm: "default".into(),
            encoder: EncoderConfig::default(),
            limits: Limits::default(),
            dictionaries: Vec::new(),
            write_queue: 65_536,
            frame_messages: 1024,
            in_flight: 256,
            ack_timeout: Duration::from_secs(5),
            client_capacity: 4096,
        }
    }
}

/// Counters of a transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsStats {
    /// Frames published.
    pub frames_sent: u64,
    /// Messages published.
    pub messages_sent: u64,
    /// Messages acknowledged by the receiving process.
    pub messages_acked: u64,
    /// Messages reported undeliverable by this transport.
    pub reported: u64,
    /// Messages received and handed to local mailboxes.
    pub messages_received: u64,
    /// Bytes published (frames, headers included).
    pub bytes_sent: u64,
    /// Raw bytes of the published messages before compression.
    pub raw_bytes_sent: u64,
    /// Publish or acknowledgement failures (frames).
    pub publish_errors: u64,
    /// Times the client reconnected.
    pub reconnects: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_acked: AtomicU64,
    pub(crate) reported: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) raw_bytes_sent: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// State the transport's tasks share.
pub(crate) struct Transport {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: async_nats::Client,
    pub(crate) config: NatsConfig,
    pub(crate) inbox: Arc<Inbox>,
    /// Group address -> group name.
    pub(crate) groups: Mutex<HashMap<AgentId, String>>,
    pub(crate) counters: Counters,
    /// Frames published and waiting for their acknowledgement, by sequence.
    pub(crate) pending: Mutex<HashMap<u64, outbound::PendingFrame>>,
    /// Bounds the frames in flight (`in_flight` permits).
    pub(crate) window: Arc<tokio::sync::Semaphore>,
    /// Reply subjects are `<ack_prefix>.<sequence>`.
    pub(crate) ack_prefix: String,
}

impl Transport {
    pub(crate) fn agent_subject(&self, agent: &AgentId) -> String {
        format!("hive.{}.agent.{agent}", self.config.swarm)
    }

    pub(crate) fn broadcast_subject(&self) -> String {
        format!("hive.{}.broadcast", self.config.swarm)
    }

    pub(crate) fn group_subject(&self, name: &str) -> String {
        format!("hive.{}.group.{name}", self.config.swarm)
    }

    /// Reports `messages` undeliverable and counts them.
    pub(crate) fn report(&self, messages: Vec<hive_types::Message>) {
        if messages.is_empty() {
            return;
        }
        self.counters
            .reported
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_nats_reported_total").increment(messages.len() as u64);
        self.shared
            .undeliverable(messages, crate::UndeliveredReason::Unknown);
    }
}

/// The address of a queue group: a fixed id derived from its name, so
/// every process computes the same one.
pub fn group_address(swarm: &str, group: &str) -> AgentId {
    // FNV-1a over "swarm/group", spread over 128 bits.
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in swarm
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(group.bytes())
    {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    AgentId::from_u128(h)
}

/// A communicator's connection to NATS; see the [module docs](self).
pub struct NatsTransport {
    transport: Arc<Transport>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    inbound: inbound::Subscriptions,
}

impl NatsTransport {
    /// Connects `comm` to the NATS server(s) at `servers` (for example
    /// `nats://127.0.0.1:4222`, comma-separated for a cluster) and starts
    /// routing on the current tokio runtime.
    pub async fn connect(
        comm: &Communicator,
        servers: &str,
        config: NatsConfig,
    ) -> HiveResult<NatsTransport> {
        let reconnects = Arc::new(AtomicU64::new(0));
        let counted = reconnects.clone();
        let options = async_nats::ConnectOptions::new()
            .client_capacity(config.client_capacity.max(1))
            .event_callback(move |event| {
                let counted = counted.clone();
                async move {
                    if matches!(event, async_nats::Event::Connected) {
                        counted.fetch_add(1, Ordering::Relaxed);
                        #[cfg(feature = "metrics")]
                        metrics::counter!("hive_nats_reconnects_total").increment(1);
                    }
                }
            });
        // no_echo: this process's own broadcasts were delivered locally already.
        let client = options
            .no_echo()
            .connect(servers)
            .await
            .map_err(|e| nats_error("connect", &e))?;
        client
            .flush()
            .await
            .map_err(|e| nats_error("connect", &e))?;
        let shared = comm.shared().clone();
        let config_in_flight = config.in_flight.max(1);
        let inbox_prefix = client.new_inbox();
        let id = AgentId::random();
        let inbox = Arc::new(Inbox::new_remote(id, config.write_queue.max(1)));
        shared.registry.add_route(id, &inbox);
        shared.registry.set_default_route(Some(inbox.clone()));
        let transport = Arc::new(Transport {
            shared,
            client,
            config,
            inbox: inbox.clone(),
            groups: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            pending: Mutex::new(HashMap::new()),
            window: Arc::new(tokio::sync::Semaphore::new(config_in_flight)),
            ack_prefix: format!("{}.hive-ack", inbox_prefix),
        });
        let outbox = Mailbox::new(inbox, transport.shared.clone());
        let (inbound, inbound_tasks) = inbound::start(transport.clone(), comm.sender()).await?;
        let mut tasks = outbound::start(transport.clone(), outbox, reconnects).await?;
        tasks.extend(inbound_tasks);
        Ok(NatsTransport {
            transport,
            tasks,
            inbound,
        })
    }

    /// The subject of `agent`'s frames.
    pub fn agent_subject(&self, agent: &AgentId) -> String {
        self.transport.agent_subject(agent)
    }

    /// Joins `member` (a local agent) to the queue group `group`: frames
    /// sent to [`group_address`] of the group reach one member process,
    /// which hands them to `member`. Returns the group's address.
    pub async fn join_group(&self, group: &str, member: AgentId) -> HiveResult<AgentId> {
        let address = self.group_address(group);
        self.inbound
            .join_group(&self.transport, group, member)
            .await?;
        Ok(address)
    }

    /// The address to send to for `group` (and remember it as a group).
    pub fn group_address(&self, group: &str) -> AgentId {
        let address = group_address(&self.transport.config.swarm, group);
        self.transport
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address, group.to_string());
        address
    }

    /// The server's largest accepted payload.
    pub fn max_payload(&self) -> usize {
        self.transport.client.server_info().max_payload
    }

    /// Counters so far.
    pub fn stats(&self) -> NatsStats {
        let c = &self.transport.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NatsStats {
            frames_sent: get(&c.frames_sent),
            messages_sent: get(&c.messages_sent),
            messages_acked: get(&c.messages_acked),
            reported: get(&c.reported),
            messages_received: get(&c.messages_received),
            bytes_sent: get(&c.bytes_sent),
            raw_bytes_sent: get(&c.raw_bytes_sent),
            publish_errors: get(&c.publish_errors),
            reconnects: get(&c.reconnects),
        }
    }

    /// Waits until every published frame was acknowledged or reported.
    pub async fn settle(&self, timeout: Duration) -> HiveResult<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let queued = self.transport.inbox.reserved();
            let pending = outbound::pending(&self.transport);
            if queued == 0 && pending == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HiveError::Timeout {
                    what: "NATS acknowledgements",
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops routing through NATS: what is queued is reported, the
    /// subscriptions end, and sends to agents outside this process fail
    /// with `UnknownAgent` again.
    pub async fn close(self) -> NatsStats {
        let shared = &self.transport.shared;
        shared.registry.set_default_route(None);
        shared.registry.remove_routes_to(&self.transport.inbox);
        for core in shared.live_senders() {
            core.flush_all(shared, crate::FlushReason::Close);
        }
        let _ = self.settle(self.transport.config.ack_timeout).await;
        self.transport.inbox.close();
        for t in &self.tasks {
            t.abort();
        }
        let leftovers: Vec<_> = self
            .transport
            .inbox
            .drain()
            .into_iter()
            .flat_map(|b| b.messages)
            .collect();
        self.transport.report(leftovers);
        outbound::report_pending(&self.transport);
        let _ = self.transport.client.flush().await;
        self.stats()
    }
}

impl fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsTransport")
            .field("swarm", &self.transport.config.swarm)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A round trip through the server: once it returns, the server has
/// processed every command this connection sent before it (subscriptions
/// included). `flush` alone only empties the client's write buffer.
pub(crate) async fn sync(client: &async_nats::Client) -> HiveResult<()> {
    let probe = format!("_HIVE.sync.{}", AgentId::random().as_u128());
    match client.request(probe, bytes::Bytes::new()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(nats_error("sync", &e)),
    }
}

pub(crate) fn nats_error(what: &'static str, e: &dyn std::fmt::Display) -> HiveError {
    HiveError::Io(std::io::Error::other(format!("NATS {what}: {e}")))
}
