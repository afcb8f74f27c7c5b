//! State shared by a communicator, its senders, mailboxes and flusher.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use hive_types::{AgentId, Message, SharedRecycler};

use crate::batch::{Batch, FlushReason};
use crate::config::CommunicatorConfig;
use crate::inbox::Inbox;
use crate::registry::Registry;
use crate::requests::{Offered, Requests};
use crate::stats::{Recorders, SendCounts};
use crate::undelivered::{DeadLetters, ReasonCounts, Undelivered, UndeliveredReason};

use hive_types::sync::lock;

/// A sender's batches, as the flusher, `flush_all`, `close` and the
/// statistics see them (implemented by the sender's core).
pub(crate) trait HeldBatches: Send + Sync {
    /// Earliest time one of its batches is due (`NEVER` if none).
    fn next_deadline(&self) -> u64;
    /// Flushes every open batch.
    fn flush_all(&self, shared: &Shared, reason: FlushReason);
    /// Flushes what is due (or whose consumer waits, with `idle_poke`);
    /// returns the next deadline.
    fn flush_due(&self, shared: &Shared, now: u64, idle_poke: bool) -> u64;
    /// What it sent so far.
    fn counts(&self) -> SendCounts;
}

/// Deadline value meaning "none".
pub(crate) const NEVER: u64 = u64::MAX;

pub(crate) struct Shared {
    pub(crate) config: CommunicatorConfig,
    epoch: Instant,
    pub(crate) linger_ns: u64,
    pub(crate) registry: Registry,
    /// Every live sender, for the flusher and for statistics.
    pub(crate) senders: Mutex<Vec<Weak<dyn HeldBatches>>>,
    /// Counts of senders that are gone.
    pub(crate) retired: Mutex<SendCounts>,
    pub(crate) recycler: SharedRecycler<VecDeque<Message>>,
    dead_letters: Mutex<DeadLetters>,
    /// Requests waiting for their replies.
    pub(crate) requests: Requests,
    /// Replies handed to waiting requests.
    replies: AtomicU64,
    /// Ids of messages received from other processes, to drop duplicates.
    dedup: Mutex<crate::dedup::Dedup>,
    closed: AtomicBool,
    pub(crate) recorders: Recorders,
    pub(crate) flusher: FlusherSignal,
    /// The sender id of messages from outside any agent: announced to
    /// peers like a local agent, with no mailbox, so replies to requests
    /// sent under it come back across transports.
    pub(crate) reply_address: AgentId,
}

/// How senders and mailboxes reach the flusher thread.
#[derive(Debug, Default)]
pub(crate) struct FlusherSignal {
    pub(crate) thread: std::sync::OnceLock<Thread>,
    /// When the flusher will next wake on its own (NEVER while it scans).
    pub(crate) wake_at: AtomicU64,
    /// A consumer went idle while senders held batches for it.
    pub(crate) idle_poke: AtomicBool,
}

impl FlusherSignal {
    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// A batch will be due at `deadline`: wake the flusher if it would sleep past it.
    #[inline]
    pub(crate) fn schedule(&self, deadline: u64) {
        if deadline < self.wake_at.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// A consumer is about to wait while batches for it sit in senders.
    pub(crate) fn poke_idle(&self) {
        self.idle_poke.store(true, Ordering::SeqCst);
        self.wake();
    }
}

impl Shared {
    pub(crate) fn new(
        config: CommunicatorConfig,
        recycler: SharedRecycler<VecDeque<Message>>,
    ) -> Self {
        let linger_ns = u64::try_from(config.linger.as_nanos()).unwrap_or(u64::MAX / 4);
        Shared {
            epoch: Instant::now(),
            linger_ns,
            registry: Registry::default(),
            senders: Mutex::new(Vec::new()),
            retired: Mutex::new(SendCounts::default()),
            recycler,
            dead_letters: Mutex::new(DeadLetters::new(
                config.dead_letter_capacity,
                config.dead_letter_bytes,
            )),
            requests: Requests::new(config.max_pending_requests),
            replies: AtomicU64::new(0),
            dedup: Mutex::new(crate::dedup::Dedup::new(config.dedup_window)),
            closed: AtomicBool::new(false),
            recorders: Recorders::new(),
            reply_address: AgentId::random(),
            flusher: FlusherSignal {
                wake_at: AtomicU64::new(NEVER),
                ..Default::default()
            },
            config,
        }
    }

    /// What transports announce to peers as hosted here: the local agents
    /// and the reply address.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn hosted(&self) -> Vec<AgentId> {
        let mut agents = self.registry.local_agents();
        agents.push(self.reply_address);
        agents
    }

    /// A message for the reply address from another process: its
    /// waiter's reply, else a late reply or undeliverable (no mailbox).
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn to_reply_address(&self, message: Message) {
        match self.requests.offer(message) {
            Offered::Delivered => self.count_reply(),
            Offered::Late(m) => self.undeliverable([m], UndeliveredReason::LateReply),
            Offered::NotAReply(m) => self.undeliverable([m], UndeliveredReason::NoRecipient),
        }
    }

    /// When the communicator started: deadlines count from here.
    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Nanoseconds since the communicator started, for deadlines.
    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NEVER - 1)
    }

    /// The instant `nanos` after the epoch.
    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// A consumer for `inbox` exists: count its deliveries.
    pub(crate) fn track_inbox(&self, inbox: &Arc<Inbox>) {
        self.registry.track(inbox);
    }

    /// The consumer of `inbox` is gone.
    pub(crate) fn retire_inbox(&self, inbox: &Arc<Inbox>) {
        self.registry.retire(inbox);
    }

    /// Removes `inbox` from the routing table (if it is still there).
    pub(crate) fn unregister_inbox(&self, inbox: &Arc<Inbox>) {
        self.registry.unregister(inbox);
    }

    /// Live senders (pruning the dead).
    pub(crate) fn live_senders(&self) -> Vec<Arc<dyn HeldBatches>> {
        let mut senders = lock(&self.senders);
        senders.retain(|w| w.strong_count() > 0);
        senders.iter().filter_map(Weak::upgrade).collect()
    }

    /// Counts `messages` as undelivered for `reason` and keeps them for
    /// `take_undelivered` (within the store's bounds).
    pub(crate) fn undeliverable(
        &self,
        messages: impl IntoIterator<Item = Message>,
        reason: UndeliveredReason,
    ) {
        let mut store = lock(&self.dead_letters);
        let mut n = 0u64;
        for mut m in messages {
            n += 1;
            match settle_receipt(&mut m, reason) {
                // Handed back to a durable transport, which delivers it
                // again: counted, not kept (resending it would send it twice).
                true => store.count_only(reason, 1),
                false => store.add(m, reason),
            }
        }
        drop(store);
        if n > 0 {
            self.recorders.undeliverable(reason, n);
        }
    }

    /// Counts `n` undelivered messages that cannot be kept.
    #[allow(dead_code)]
    pub(crate) fn count_undeliverable(&self, reason: UndeliveredReason, n: u64) {
        if n > 0 {
            lock(&self.dead_letters).count_only(reason, n);
            self.recorders.undeliverable(reason, n);
        }
    }

    /// A batch that could not be queued (its inbox closed): its messages
    /// are undelivered and its buffer is recycled.
    pub(crate) fn refused(&self, mut batch: Batch) {
        let reason = if self.is_closed() {
            UndeliveredReason::Shutdown
        } else {
            UndeliveredReason::NoRecipient
        };
        self.undeliverable(batch.messages.drain(..), reason);
        self.recycler.give(batch.messages);
    }

    pub(crate) fn take_dead_letters(&self) -> Vec<Undelivered> {
        lock(&self.dead_letters).take()
    }

    /// Undelivered counts by reason, the total, and evictions.
    pub(crate) fn undelivered_counts(&self) -> (ReasonCounts, u64, u64) {
        let store = lock(&self.dead_letters);
        (store.counts, store.total(), store.evicted)
    }

    /// Whether `message` arrives from another process for the first time
    /// (within the dedup window); a repeat is a duplicate to drop.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn first_time(&self, message: &Message) -> bool {
        lock(&self.dedup).first_time(message.id)
    }

    /// A reply reached its waiting request.
    pub(crate) fn count_reply(&self) {
        self.replies.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn replies(&self) -> u64 {
        self.replies.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("config", &self.config)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// An undelivered message lets go of its receipt now (the store may hold
/// it long): one that expired or came too late is settled as handled, any
/// other is asked for again (a durable transport redelivers it, to this
/// process or another). True when it was handed back so.
fn settle_receipt(m: &mut Message, reason: UndeliveredReason) -> bool {
    let Some(receipt) = m.receipt.take() else {
        return false;
    };
    let again = !matches!(
        reason,
        UndeliveredReason::Expired | UndeliveredReason::LateReply
    );
    if again {
        receipt.fail();
    }
    again
}
