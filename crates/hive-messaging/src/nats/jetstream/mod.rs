//! JetStream (feature `jetstream`): agent mail that survives a crashed
//! receiver. See [`DurableConfig`] and the [NATS module docs](super).
//!
//! Frames to agents and groups go to subjects of one work-queue stream,
//! `hive.<swarm>.js.agent.<id>` and `hive.<swarm>.js.group.<name>`, each
//! published with a message id (`<publisher>-<frame sequence>`) and
//! settled by the stream's publish acknowledgement. Every hosted agent
//! (and every joined group) reads its subject through a durable pull
//! consumer; a received frame's messages share one
//! [`Receipt`](hive_types::Receipt), and the frame is acknowledged once all
//! of them were dropped after handling.

mod consume;
mod publish;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use hive_types::{AgentId, HiveError, HiveResult};

pub(crate) use consume::{consumer_for, run, Consuming};
pub(crate) use publish::publish;

use super::nats_error;

/// Where the stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// On disk: survives a server restart.
    #[default]
    File,
    /// In memory: faster, lost when the server stops.
    Memory,
}

/// The JetStream side of a [`NatsConfig`](super::NatsConfig): the stream,
/// its limits and how its consumers redeliver.
#[derive(Debug, Clone)]
pub struct DurableConfig {
    /// The stream's name (`HIVE_<swarm>` when empty).
    pub stream: String,
    /// Copies of each message in a JetStream cluster (1; 3 survives the
    /// loss of one server).
    pub replicas: usize,
    /// File (default) or memory storage.
    pub storage: Storage,
    /// Bytes the stream holds; beyond that publishes are refused and their
    /// messages reported `Refused` (1 GiB).
    pub max_bytes: u64,
    /// How long an unconsumed frame stays (24 h).
    pub max_age: Duration,
    /// How long the server remembers a message id to drop a retransmitted
    /// publish (2 min).
    pub duplicate_window: Duration,
    /// How long a consumer waits for the acknowledgement of a frame before
    /// it delivers it again (30 s). A frame still being handled is kept
    /// alive with progress signals, so this bounds the time to notice a
    /// crashed receiver, not a handler's time.
    pub ack_wait: Duration,
    /// Deliveries of a frame before it goes to the dead-letter subject (5).
    pub max_deliver: u32,
    /// Delay before the redelivery of a failed frame, by attempt; the last
    /// entry repeats (1 s, 5 s, 30 s).
    pub backoff: Vec<Duration>,
    /// Frames a consumer hands out and waits to be acknowledged (32): with
    /// `frame_messages`, the bound on a crash's duplicates per agent.
    pub max_ack_pending: usize,
    /// How long a publish waits for the stream's acknowledgement before it
    /// is sent again with the same message id (5 s); the transport's
    /// `ack_timeout` bounds the whole.
    pub publish_timeout: Duration,
}

impl Default for DurableConfig {
    fn default() -> Self {
        DurableConfig {
            stream: String::new(),
            replicas: 1,
            storage: Storage::File,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_ack_pending: 32,
            publish_timeout: Duration::from_secs(5),
        }
    }
}

impl DurableConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> HiveResult<()> {
        for (field, value) in [
            ("replicas", self.replicas),
            ("max_deliver", self.max_deliver as usize),
            ("max_ack_pending", self.max_ack_pending),
        ] {
            if value == 0 {
                return Err(HiveError::config(field, "must be at least 1"));
            }
        }
        if self.max_bytes == 0 || i64::try_from(self.max_bytes).is_err() {
            return Err(HiveError::config("max_bytes", "must be 1 to i64::MAX"));
        }
        for (field, value) in [
            ("max_age", self.max_age),
            ("duplicate_window", self.duplicate_window),
            ("ack_wait", self.ack_wait),
            ("publish_timeout", self.publish_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(HiveError::config(field, "must be at least 100 ms"));
            }
        }
        if self.stream.contains(['.', '*', '>', ' ', '\t']) {
            return Err(HiveError::config(
                "stream",
                "no '.', '*', '>' or whitespace in a stream name",
            ));
        }
        Ok(())
    }

    /// The stream's name for `swarm`.
    pub fn stream_name(&self, swarm: &str) -> String {
        match self.stream.is_empty() {
            true => format!("HIVE_{swarm}"),
            false => self.stream.clone(),
        }
    }

    /// Delay before delivering a frame again after its `deliveries`th
    /// delivery failed.
    pub(crate) fn delay(&self, deliveries: u32) -> Duration {
        let at = (deliveries.max(1) - 1) as usize;
        self.backoff
            .get(at)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

/// What the JetStream side did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableStats {
    /// Frames received and not yet acknowledged (being handled).
    pub pending: u64,
    /// Frames acknowledged after all their messages were handled.
    pub acknowledged: u64,
    /// Frames handed back for redelivery (a handler failed or panicked, or
    /// a message could not be delivered here).
    pub failed: u64,
    /// Frames received that had been delivered before.
    pub redelivered: u64,
    /// Frames moved to the dead-letter subject after `max_deliver`
    /// deliveries (or because they could not be decoded).
    pub dead_lettered: u64,
    /// Publishes sent again after a lost or failed acknowledgement.
    pub retransmitted: u64,
    /// Publishes the stream dropped as duplicates of an earlier one.
    pub duplicate_publishes: u64,
}

/// The counters behind [`DurableStats`] and their metrics
/// (`hive_jetstream_*`).
#[derive(Debug, Default)]
pub(crate) struct DurableCounters {
    pending: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    redelivered: AtomicU64,
    dead_lettered: AtomicU64,
    retransmitted: AtomicU64,
    duplicate_publishes: AtomicU64,
}

macro_rules! count {
    ($self:ident . $field:ident, $name:literal) => {{
        $self.$field.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!($name).increment(1);
    }};
}

impl DurableCounters {
    pub(crate) fn snapshot(&self) -> DurableStats {
        DurableStats {
            pending: self.pending.load(Relaxed),
            acknowledged: self.acknowledged.load(Relaxed),
            failed: self.failed.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            retransmitted: self.retransmitted.load(Relaxed),
            duplicate_publishes: self.duplicate_publishes.load(Relaxed),
        }
    }

    fn pending_by(&self, up: bool) {
        let now = match up {
            true => self.pending.fetch_add(1, Relaxed) + 1,
            false => self.pending.fetch_sub(1, Relaxed).saturating_sub(1),
        };
        #[cfg(feature = "metrics")]
        metrics::gauge!("hive_jetstream_pending").set(now as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = now;
    }

    pub(crate) fn received(&self, deliveries: u32) {
        self.pending_by(true);
        if deliveries > 1 {
            count!(self.redelivered, "hive_jetstream_redelivered_total");
        }
    }

    pub(crate) fn acknowledged(&self) {
        self.pending_by(false);
        count!(self.acknowledged, "hive_jetstream_acknowledged_total");
    }

    /// A frame whose acknowledgement could not be sent: the server
    /// delivers it again after `ack_wait`.
    pub(crate) fn unsettled(&self) {
        self.pending_by(false);
    }

    pub(crate) fn failed(&self) {
        self.pending_by(false);
        count!(self.failed, "hive_jetstream_failed_total");
    }

    pub(crate) fn dead_lettered(&self) {
        count!(self.dead_lettered, "hive_jetstream_dead_lettered_total");
    }

    pub(crate) fn retransmitted(&self) {
        count!(self.retransmitted, "hive_jetstream_retransmitted_total");
    }

    pub(crate) fn published(&self, duplicate: bool, took: Duration) {
        if duplicate {
            count!(
                self.duplicate_publishes,
                "hive_jetstream_duplicate_publishes_total"
            );
        }
        #[cfg(feature = "metrics")]
        metrics::histogram!("hive_jetstream_publish_seconds").record(took.as_secs_f64());
        #[cfg(not(feature = "metrics"))]
        let _ = took;
    }
}

/// The JetStream state of a transport.
pub(crate) struct Durable {
    pub(crate) config: DurableConfig,
    pub(crate) context: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) counters: DurableCounters,
    /// Message ids are `<publisher>-<frame sequence>`: unique per transport.
    pub(crate) publisher: String,
}

impl Durable {
    /// Creates the stream, or checks the one there has the configured
    /// subjects, retention and replicas.
    pub(crate) async fn open(
        client: async_nats::Client,
        swarm: &str,
        config: DurableConfig,
    ) -> HiveResult<Durable> {
        config.validate()?;
        let context = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client);
        let wanted = stream::Config {
            name: config.stream_name(swarm),
            subjects: vec![format!("hive.{swarm}.js.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            max_bytes: i64::try_from(config.max_bytes).unwrap_or(i64::MAX),
            max_age: config.max_age,
            storage: match config.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        };
        let mut stream = context
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| nats_error("JetStream stream", &e))?;
        let have = stream
            .info()
            .await
            .map_err(|e| nats_error("JetStream stream info", &e))?
            .config
            .clone();
        if have.subjects != wanted.subjects
            || have.retention != wanted.retention
            || have.num_replicas != wanted.num_replicas
            || have.discard != wanted.discard
            || have.duplicate_window < wanted.duplicate_window
        {
            return Err(HiveError::config(
                "stream",
                "a stream of this name exists with other subjects, retention, replicas, \
                 discard policy or a shorter duplicate window",
            ));
        }
        Ok(Durable {
            config,
            context,
            stream,
            counters: DurableCounters::default(),
            publisher: AgentId::random().to_string(),
        })
    }

    /// The consumer's settings for one subject: explicit acks, deliveries
    /// without limit (`max_deliver` is kept by the transport, which moves
    /// the frame to the dead letters), gone after `max_age` unused.
    pub(crate) fn consumer_config(&self, name: String, subject: String) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(name),
            filter_subject: subject,
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: self.config.ack_wait,
            max_deliver: -1,
            inactive_threshold: self.config.max_age,
            max_ack_pending: i64::try_from(self.config.max_ack_pending).unwrap_or(i64::MAX),
            num_replicas: 0,
            ..Default::default()
        }
    }
}

/// Turns an agent id or group name into a consumer name (no '.', '*',
/// '>' or whitespace).
pub(crate) fn consumer_name(prefix: &str, key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' | ' ' | '\t' => '_',
            c => c,
        })
        .collect();
    format!("{prefix}_{clean}")
}
