//! NATS transport (feature `nats`): swarms that span machines.
//!
//! A [`NatsTransport`] joins the local [`Communicator`] to a NATS server or
//! cluster. Every process subscribes to the subjects of the agents it
//! hosts; a message to an agent that is not in this process goes to that
//! agent's subject. No registry is needed: NATS routes by subject, across a
//! cluster too.
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
//! `max_payload` cannot travel and is reported). The zstd level adapts
//! frame by frame between [`NatsConfig::fastest_level`] and the encoder's
//! level, from whether compressing or the connection holds the writer back.
//!
//! ## Connecting
//!
//! [`connect`](NatsTransport::connect) takes server URLs;
//! [`connect_with`](NatsTransport::connect_with) takes your
//! `async_nats::ConnectOptions` (credentials, nkeys, tokens, TLS, timeouts);
//! [`with_client`](NatsTransport::with_client) takes a client you already
//! have (the transport never drains it: close it yourself).
//!
//! ## What is guaranteed
//!
//! Core NATS delivers at most once. On top of it every frame to an agent or
//! a group is published with a reply subject, and the receiving process
//! answers once all its messages were taken by local mailboxes. So every
//! message to an agent or a group ends as (see [`transport`](crate::transport)):
//!
//! - **delivered**: acknowledged;
//! - **not delivered**: `NoRecipient` (nobody subscribes to the subject:
//!   NATS "no responders"), `NotSent` (never published: still queued at
//!   close, larger than `max_payload`, or the client refused it);
//! - **unknown**: published, no acknowledgement within `ack_timeout` (a
//!   server outage, a network split, a crashed or very slow receiver): it
//!   may still arrive. Receivers drop duplicates by message id, so resending
//!   is safe.
//!
//! Broadcasts are published without acknowledgement (the number of
//! receiving processes is unknown): at most once.
//!
//! While the client is disconnected the transport publishes nothing: its
//! write queue (bounded in messages and bytes) fills and senders wait, or
//! get `Full` from `try_send`; frames in flight are bounded in number and
//! bytes. [`close`](NatsTransport::close) never waits longer than
//! `close_timeout`, server or no server.
//!
//! ## Durable mail (feature `jetstream`)
//!
//! With [`NatsConfig::durable`] set, agent and group mail goes through a
//! JetStream work-queue stream instead (subjects `hive.<swarm>.js.agent.<id>`
//! and `hive.<swarm>.js.group.<name>`) and is handled **at least once**,
//! across crashes of the receiver and restarts of the server: frames are
//! published with a message id and count as delivered once the stream
//! stored them; each hosted agent and joined group reads through a durable
//! consumer; a received frame is acknowledged when all its messages were
//! dropped after handling (their shared [`Receipt`](hive_types::Receipt)),
//! redelivered if one failed, and moved to `hive.<swarm>.js.dead.<whom>`
//! after [`DurableConfig::max_deliver`] deliveries. Broadcasts stay on core
//! NATS.

mod adapt;
mod inbound;
#[cfg(feature = "jetstream")]
mod jetstream;
mod outbound;

#[cfg(feature = "jetstream")]
pub use jetstream::{DurableConfig, DurableStats, Storage};

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hive_types::{AgentId, HiveError, HiveResult};

use crate::shared::Shared;
use crate::transport::{Counters, LinkQueue, TransportStats};
use crate::wire::{Dictionary, EncoderConfig, Limits};
use crate::Communicator;
use hive_types::sync::lock;

/// How the NATS transport names subjects, encodes and bounds.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Name of the swarm: the second token of every subject.
    pub swarm: String,
    /// Compression of outgoing frames.
    pub encoder: EncoderConfig,
    /// The fastest zstd level the writer drops to, a step per frame, while
    /// compressing rather than the connection holds messages back (-3);
    /// `encoder.level` is where it climbs back to. Set it to
    /// `encoder.level` for one fixed level.
    pub fastest_level: i32,
    /// Limits on incoming frames.
    pub limits: Limits,
    /// Dictionaries incoming frames may use.
    pub dictionaries: Vec<Dictionary>,
    /// Messages the transport's send queue holds (65,536).
    pub write_queue: usize,
    /// Bytes the send queue holds (64 MiB).
    pub write_queue_bytes: usize,
    /// Most messages per frame (and never above the server's `max_payload`).
    pub frame_messages: usize,
    /// Frames published and not yet acknowledged before publishing waits
    /// (256).
    pub in_flight: usize,
    /// Raw bytes of the messages in those frames (kept until acknowledged)
    /// before publishing waits (16 MiB).
    pub in_flight_bytes: usize,
    /// How long a frame may wait for its acknowledgement before its
    /// messages are reported unknown (30 s).
    pub ack_timeout: Duration,
    /// Longest [`NatsTransport::close`] takes (10 s).
    pub close_timeout: Duration,
    /// Received messages handed to local mailboxes before the transport
    /// lets other tasks run (256).
    pub messages_per_turn: usize,
    /// Received frames waiting to be handed to local mailboxes (64).
    pub inbound_frames: usize,
    /// Bytes of those frames (16 MiB).
    pub inbound_bytes: usize,
    /// Commands async-nats buffers while disconnected, when the transport
    /// makes the client ([`NatsTransport::connect`]) (1,024).
    pub client_capacity: usize,
    /// Messages async-nats buffers per subscription before it drops them
    /// (their senders then see no acknowledgement), when the transport makes
    /// the client (1,024).
    pub subscription_capacity: usize,
    /// Agent and group mail through a JetStream stream, at least once
    /// (feature `jetstream`; `None`, core NATS, by default).
    #[cfg(feature = "jetstream")]
    pub durable: Option<DurableConfig>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            swarm: "default".into(),
            encoder: EncoderConfig::default(),
            fastest_level: -3,
            limits: Limits::default(),
            dictionaries: Vec::new(),
            write_queue: 65_536,
            write_queue_bytes: 64 << 20,
            frame_messages: 1024,
            in_flight: 256,
            in_flight_bytes: 16 << 20,
            ack_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(10),
            messages_per_turn: 256,
            inbound_frames: 64,
            inbound_bytes: 16 << 20,
            client_capacity: 1024,
            subscription_capacity: 1024,
            #[cfg(feature = "jetstream")]
            durable: None,
        }
    }
}

impl NatsConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> HiveResult<()> {
        for (field, value) in [
            ("write_queue", self.write_queue),
            ("write_queue_bytes", self.write_queue_bytes),
            ("frame_messages", self.frame_messages),
            ("in_flight", self.in_flight),
            ("in_flight_bytes", self.in_flight_bytes),
            ("messages_per_turn", self.messages_per_turn),
            ("inbound_frames", self.inbound_frames),
            ("inbound_bytes", self.inbound_bytes),
            ("client_capacity", self.client_capacity),
            ("subscription_capacity", self.subscription_capacity),
        ] {
            if value == 0 {
                return Err(HiveError::config(field, "must be at least 1"));
            }
        }
        for (field, value) in [
            ("ack_timeout", self.ack_timeout),
            ("close_timeout", self.close_timeout),
        ] {
            if value.is_zero() {
                return Err(HiveError::config(field, "must be more than zero"));
            }
        }
        if self.swarm.is_empty() || self.swarm.contains(['.', '*', '>', ' ']) {
            return Err(HiveError::config(
                "swarm",
                "must be one subject token: not empty, no '.', '*', '>' or space",
            ));
        }
        #[cfg(feature = "jetstream")]
        if let Some(d) = &self.durable {
            d.validate()?;
            if self.ack_timeout > d.duplicate_window {
                return Err(HiveError::config(
                    "ack_timeout",
                    "must not exceed durable.duplicate_window: a publish sent again \
                     after the window is stored twice",
                ));
            }
        }
        Ok(())
    }
}

/// State the transport's tasks share.
pub(crate) struct Transport {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: async_nats::Client,
    pub(crate) config: NatsConfig,
    pub(crate) queue: Arc<LinkQueue>,
    /// Group address -> group name.
    pub(crate) groups: Mutex<HashMap<AgentId, String>>,
    pub(crate) counters: Counters,
    pub(crate) pending: outbound::Pending,
    /// Messages the writer took from the queue and published or reported.
    pub(crate) finished: AtomicU64,
    /// Reply subjects are `<ack_prefix>.<sequence>`.
    pub(crate) ack_prefix: String,
    /// Connections the client had made when the transport started.
    connects_at_start: u64,
    /// The JetStream side, when agent mail is durable.
    #[cfg(feature = "jetstream")]
    pub(crate) durable: Option<jetstream::Durable>,
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

    /// Whether agent and group mail goes through JetStream.
    pub(crate) fn is_durable(&self) -> bool {
        #[cfg(feature = "jetstream")]
        return self.durable.is_some();
        #[cfg(not(feature = "jetstream"))]
        false
    }

    pub(crate) fn js_agent_subject(&self, agent: &AgentId) -> String {
        format!("hive.{}.js.agent.{agent}", self.config.swarm)
    }

    pub(crate) fn js_group_subject(&self, name: &str) -> String {
        format!("hive.{}.js.group.{name}", self.config.swarm)
    }

    #[cfg(feature = "jetstream")]
    pub(crate) fn js_dead_subject(&self, whom: &str) -> String {
        format!("hive.{}.js.dead.{whom}", self.config.swarm)
    }

    fn stats(&self) -> TransportStats {
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        let mut s = self.counters.snapshot();
        s.reconnects = connects.saturating_sub(self.connects_at_start);
        s
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
        let options = async_nats::ConnectOptions::new()
            .client_capacity(config.client_capacity)
            .subscription_capacity(config.subscription_capacity);
        NatsTransport::connect_with(comm, servers, options, config).await
    }

    /// Like [`connect`](Self::connect) with your connect options:
    /// credentials (`with_credentials_file`, `with_nkey`, `with_token`,
    /// `with_user_and_password`), TLS (`require_tls`,
    /// `add_root_certificates`, `add_client_certificate`,
    /// `tls_client_config`), timeouts. The transport adds `no_echo` (this
    /// process's own broadcasts were delivered locally already).
    pub async fn connect_with(
        comm: &Communicator,
        servers: &str,
        options: async_nats::ConnectOptions,
        config: NatsConfig,
    ) -> HiveResult<NatsTransport> {
        config.validate()?;
        // async-nats takes a list, not a comma-separated string.
        let servers: Vec<&str> = servers.split(',').map(str::trim).collect();
        let client = options
            .no_echo()
            .connect(servers)
            .await
            .map_err(|e| nats_error("connect", &e))?;
        NatsTransport::with_client(comm, client, config).await
    }

    /// Routes through a client you already connected. Connect it with
    /// `no_echo`, or this process receives its own broadcasts twice. The
    /// transport does not close the client.
    pub async fn with_client(
        comm: &Communicator,
        client: async_nats::Client,
        config: NatsConfig,
    ) -> HiveResult<NatsTransport> {
        config.validate()?;
        let shared = comm.shared().clone();
        let queue = LinkQueue::open(&shared, config.write_queue, config.write_queue_bytes);
        shared.registry.set_default_route(Some(queue.inbox.clone()));
        let connects_at_start = client.statistics().connects.load(Ordering::Relaxed);
        #[cfg(feature = "jetstream")]
        let durable = match &config.durable {
            Some(d) => {
                Some(jetstream::Durable::open(client.clone(), &config.swarm, d.clone()).await?)
            }
            None => None,
        };
        let transport = Arc::new(Transport {
            shared,
            ack_prefix: format!("{}.hive-ack", client.new_inbox()),
            pending: outbound::Pending::new(config.in_flight, config.in_flight_bytes),
            finished: AtomicU64::new(0),
            client,
            config,
            queue,
            groups: Mutex::new(HashMap::new()),
            counters: Counters::new("nats"),
            connects_at_start,
            #[cfg(feature = "jetstream")]
            durable,
        });
        let (inbound, inbound_tasks) = inbound::start(transport.clone(), comm.sender()).await?;
        let mut tasks = outbound::start(transport.clone()).await?;
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
        lock(&self.transport.groups).insert(address, group.to_string());
        address
    }

    /// What the JetStream side did so far (`None` without
    /// [`NatsConfig::durable`]).
    #[cfg(feature = "jetstream")]
    pub fn durable_stats(&self) -> Option<DurableStats> {
        let d = self.transport.durable.as_ref()?;
        Some(d.counters.snapshot())
    }

    /// The subject (in the stream) where frames for `whom` (an agent id, or
    /// a group name) go after `max_deliver` deliveries, with the headers
    /// `Hive-Reason`, `Hive-Deliveries` and `Hive-Stream-Sequence`. Read it
    /// with a consumer of your own.
    #[cfg(feature = "jetstream")]
    pub fn dead_letter_subject(&self, whom: &str) -> String {
        self.transport.js_dead_subject(whom)
    }

    /// The server's largest accepted payload.
    pub fn max_payload(&self) -> usize {
        self.transport.client.server_info().max_payload
    }

    /// Counters so far.
    pub fn stats(&self) -> TransportStats {
        self.transport.stats()
    }

    /// Waits until everything queued was published and every published
    /// frame was acknowledged or reported, at most `timeout`.
    pub async fn settle(&self, timeout: Duration) -> HiveResult<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let t = &self.transport;
            if t.queue.is_drained(&t.finished) && t.pending.len() == 0 {
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

    /// Stops routing through NATS, within `close_timeout` whatever the
    /// server's state: sends to agents outside this process fail with
    /// `UnknownAgent` again, what senders hold is flushed and published if
    /// the time allows, frames still waiting for acknowledgement are
    /// reported unknown and what was never published not sent.
    pub async fn close(self) -> TransportStats {
        let t = &self.transport;
        let deadline = tokio::time::Instant::now() + t.config.close_timeout;
        t.shared.registry.set_default_route(None);
        t.queue.stop_accepting();
        let _ = self
            .settle(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let pending = t.pending.drain();
        t.queue.finish(pending, &t.counters).await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left, t.client.flush()).await;
        t.stats()
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
