//! The bounded queue of batches behind a [`Mailbox`](crate::Mailbox) (an
//! agent's receiving end) and behind a link's write queue
//! (`transport::LinkQueue`): one type, two owners.
//!
//! Capacity is counted in messages and *reserved when a message is
//! accepted*, even while it still sits in a sender's batch, so a flush never
//! fails for lack of room and `try_send` on a full mailbox hands the message
//! straight back. The room is given back when the consumer hands a message
//! out (not when it takes a batch), so the messages a consumer has read
//! ahead count too: `capacity` bounds everything accepted and not yet
//! handled.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Instant;

use atomic_waker::AtomicWaker;
use crossbeam_utils::CachePadded;
use hive_types::AgentId;

use crate::batch::Batch;
use crate::signal::Signal;
use crate::sync::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Why a slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    Full,
    Closed,
}

/// What a scheduler-driven consumer runs when mail arrives.
pub(crate) type ReadyHook = Box<dyn Fn() + Send + Sync>;

// Fields are grouped by who writes them and how often, each group on its
// own cache line: senders reserve per message, the queue changes per batch,
// and the consumer's counters change per message it hands out. A sender
// must not miss its cache on every message because the consumer counted one.
pub(crate) struct Inbox {
    pub(crate) agent: AgentId,
    pub(crate) capacity: usize,
    /// Most bytes (payload plus envelope estimate) accepted and not handed
    /// out; one message larger than this still fits an empty inbox.
    pub(crate) max_bytes: usize,
    /// The write queue of a link to another process (its `agent` is the
    /// link's id), rather than a local agent's mailbox.
    pub(crate) remote: bool,
    closed: AtomicBool,
    senders: CachePadded<SenderSide>,
    queue: CachePadded<QueueSide>,
    consumer: CachePadded<ConsumerSide>,
    /// Blocking consumers wait here.
    pub(crate) not_empty: Signal,
    /// The async consumer's waker: one consumer, so one slot, and waiting
    /// allocates nothing.
    pub(crate) consumer_waker: AtomicWaker,
    /// Senders wait here for room.
    pub(crate) not_full: Signal,
    /// Called after every batch is queued (consumers driven by a scheduler).
    pub(crate) ready_hook: OnceLock<ReadyHook>,
}

/// Written by senders per message.
struct SenderSide {
    /// Messages accepted for this inbox and not yet handed out: queued,
    /// read ahead by the consumer, or held in senders' batches.
    reserved: AtomicUsize,
    /// Bytes of the reserved messages.
    bytes: AtomicUsize,
    /// Senders' batches for this inbox that are started but not flushed.
    partial_batches: AtomicUsize,
}

/// Written per batch, by senders (push) and the consumer (take).
struct QueueSide {
    batches: Mutex<VecDeque<Batch>>,
    /// Messages in `batches`: lets the consumer poll without the lock.
    queued: AtomicUsize,
    /// Highest priority queued since the consumer last looked.
    pending_priority: AtomicU8,
    /// The consumer is waiting and no sender has woken it yet.
    idle: AtomicBool,
    /// The consumer is blocked waiting for mail.
    waiting: AtomicBool,
}

/// Written by the consumer, read by statistics.
struct ConsumerSide {
    /// Messages the consumer handed out.
    delivered: AtomicU64,
    /// Messages the consumer took from the queue and has not handed out.
    ahead: AtomicUsize,
    /// When the oldest batch the consumer holds started (nanoseconds since
    /// `epoch` + 1; 0 when it holds none).
    oldest_ahead: AtomicU64,
}

impl Inbox {
    pub(crate) fn new(agent: AgentId, capacity: usize, max_bytes: usize) -> Self {
        Inbox::with_kind(agent, capacity, max_bytes, false)
    }

    /// The outgoing queue of a link to another process.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn new_remote(link: AgentId, capacity: usize, max_bytes: usize) -> Self {
        Inbox::with_kind(link, capacity, max_bytes, true)
    }

    fn with_kind(agent: AgentId, capacity: usize, max_bytes: usize, remote: bool) -> Self {
        Inbox {
            agent,
            capacity,
            max_bytes,
            remote,
            closed: AtomicBool::new(false),
            senders: CachePadded::new(SenderSide {
                reserved: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                partial_batches: AtomicUsize::new(0),
            }),
            queue: CachePadded::new(QueueSide {
                batches: Mutex::new(VecDeque::new()),
                queued: AtomicUsize::new(0),
                pending_priority: AtomicU8::new(0),
                idle: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
            }),
            consumer: CachePadded::new(ConsumerSide {
                delivered: AtomicU64::new(0),
                ahead: AtomicUsize::new(0),
                oldest_ahead: AtomicU64::new(0),
            }),
            not_empty: Signal::new(),
            consumer_waker: AtomicWaker::new(),
            not_full: Signal::new(),
            ready_hook: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Batch>> {
        crate::sync::lock(&self.queue.batches)
    }

    /// Reserves room for one message of `size` bytes.
    #[inline]
    pub(crate) fn try_reserve(&self, size: usize) -> Result<(), NoRoom> {
        if self.closed.load(Ordering::Acquire) {
            return Err(NoRoom::Closed);
        }
        let reserved = &self.senders.reserved;
        let mut used = reserved.load(Ordering::Relaxed);
        loop {
            if used >= self.capacity {
                return Err(NoRoom::Full);
            }
            match reserved.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        let bytes = &self.senders.bytes;
        let before = bytes.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before.saturating_add(size) > self.max_bytes {
            bytes.fetch_sub(size, Ordering::AcqRel);
            reserved.fetch_sub(1, Ordering::AcqRel);
            // No wake-up here: a sender that failed only because of this
            // attempt found other bytes reserved (an empty inbox takes any
            // one message), and their release wakes it.
            return Err(NoRoom::Full);
        }
        Ok(())
    }

    /// Gives back `n` reserved slots holding `bytes` and wakes senders
    /// waiting for room.
    pub(crate) fn release(&self, n: usize, bytes: usize) {
        if n > 0 {
            self.senders.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.senders.reserved.fetch_sub(n, Ordering::AcqRel);
            self.not_full.notify();
        }
    }

    /// Bytes accepted and not handed out.
    #[cfg(test)]
    pub(crate) fn reserved_bytes(&self) -> usize {
        self.senders.bytes.load(Ordering::Relaxed)
    }

    /// A sender opened a batch for this inbox.
    pub(crate) fn batch_opened(&self) {
        self.senders.partial_batches.fetch_add(1, Ordering::AcqRel);
    }

    /// A sender flushed (or dropped) its open batch for this inbox.
    pub(crate) fn batch_closed(&self) {
        self.senders.partial_batches.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether senders hold open batches for this inbox.
    pub(crate) fn has_partial_batches(&self) -> bool {
        self.senders.partial_batches.load(Ordering::SeqCst) > 0
    }

    /// Queues a batch whose messages hold reservations. A closed inbox
    /// hands the batch back (its reservations released).
    pub(crate) fn push(&self, batch: Batch) -> Result<(), Batch> {
        let n = batch.len();
        {
            let mut queue = self.lock();
            if self.closed.load(Ordering::Acquire) {
                drop(queue);
                self.release(n, batch.bytes);
                return Err(batch);
            }
            self.queue
                .pending_priority
                .fetch_max(batch.top_priority as u8, Ordering::AcqRel);
            queue.push_back(batch);
            self.queue.queued.fetch_add(n, Ordering::Release);
        }
        self.wake_consumer();
        if let Some(hook) = self.ready_hook.get() {
            hook();
        }
        Ok(())
    }

    /// Moves every queued batch to the back of `into` (the consumer's own
    /// list), oldest first. Their room stays reserved until the consumer
    /// hands their messages out. Looks at the counter first, so polling an
    /// empty inbox takes no lock.
    #[inline]
    pub(crate) fn take_all(&self, into: &mut VecDeque<Batch>) -> usize {
        if self.queue.queued.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut queue = self.lock();
        let n: usize = queue.iter().map(Batch::len).sum();
        if into.is_empty() {
            std::mem::swap(&mut *queue, into);
        } else {
            into.extend(queue.drain(..));
        }
        self.queue.queued.fetch_sub(n, Ordering::Release);
        n
    }

    /// Messages queued (not counting those read ahead by the consumer or
    /// still in senders' batches).
    pub(crate) fn queued(&self) -> usize {
        self.queue.queued.load(Ordering::Relaxed)
    }

    /// Messages accepted for this inbox and not yet handed out.
    pub(crate) fn reserved(&self) -> usize {
        self.senders.reserved.load(Ordering::Acquire)
    }

    /// Messages waiting for the consumer: queued plus read ahead.
    pub(crate) fn depth(&self) -> usize {
        self.queued() + self.consumer.ahead.load(Ordering::Relaxed)
    }

    /// When the oldest message waiting for the consumer joined its batch
    /// (`epoch` is the communicator's start).
    pub(crate) fn oldest(&self, epoch: Instant) -> Option<Instant> {
        let queued = self.lock().front().map(|b| b.started);
        let ahead = match self.consumer.oldest_ahead.load(Ordering::Relaxed) {
            0 => None,
            n => Some(epoch + std::time::Duration::from_nanos(n - 1)),
        };
        match (queued, ahead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The consumer publishes how many messages it holds read ahead.
    #[inline]
    pub(crate) fn publish_ahead_len(&self, ahead: usize) {
        self.consumer.ahead.store(ahead, Ordering::Relaxed);
    }

    /// The consumer publishes what it holds read ahead (for depth and lag).
    pub(crate) fn publish_ahead(&self, ahead: usize, oldest_ns: Option<u64>) {
        self.consumer.ahead.store(ahead, Ordering::Relaxed);
        self.consumer.oldest_ahead.store(
            oldest_ns.map_or(0, |n| n.saturating_add(1)),
            Ordering::Relaxed,
        );
    }

    /// The highest priority queued since the last call (the consumer's
    /// scheduler reads it).
    pub(crate) fn take_pending_priority(&self) -> u8 {
        self.queue.pending_priority.swap(0, Ordering::AcqRel)
    }

    /// Marks the consumer as waiting (or not).
    pub(crate) fn set_idle(&self, idle: bool) {
        self.queue.waiting.store(idle, Ordering::SeqCst);
        self.queue.idle.store(idle, Ordering::SeqCst);
    }

    /// Whether the consumer is blocked waiting for mail.
    pub(crate) fn is_waiting(&self) -> bool {
        self.queue.waiting.load(Ordering::SeqCst)
    }

    /// Whether the consumer is waiting; the first sender to see it claims
    /// the wake-up, so one idle period triggers one immediate flush.
    #[inline]
    pub(crate) fn claim_idle(&self) -> bool {
        let idle = &self.queue.idle;
        idle.load(Ordering::Relaxed) && idle.swap(false, Ordering::AcqRel)
    }

    /// Counts messages the consumer handed out (called by the single consumer).
    pub(crate) fn add_delivered(&self, n: usize) {
        let d = &self.consumer.delivered;
        d.store(d.load(Ordering::Relaxed) + n as u64, Ordering::Release);
    }

    /// Messages the consumer handed out so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.consumer.delivered.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops accepting messages; queued batches stay for the consumer to
    /// drain. Wakes everyone waiting.
    pub(crate) fn close(&self) {
        {
            let _queue = self.lock();
            self.closed.store(true, Ordering::Release);
        }
        self.wake_consumer();
        self.not_full.notify();
    }

    /// Wakes the consumer, async or blocked.
    #[inline]
    fn wake_consumer(&self) {
        self.consumer_waker.wake();
        self.not_empty.notify();
    }

    /// Removes every queued batch, releasing their room.
    pub(crate) fn drain(&self) -> Vec<Batch> {
        let drained: Vec<Batch> = self.lock().drain(..).collect();
        let n: usize = drained.iter().map(Batch::len).sum();
        let bytes: usize = drained.iter().map(|b| b.bytes).sum();
        self.queue.queued.fetch_sub(n, Ordering::Relaxed);
        self.release(n, bytes);
        drained
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("agent", &self.agent)
            .field("capacity", &self.capacity)
            .field("reserved", &self.reserved())
            .field("queued", &self.queued())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::Message;

    fn batch(n: usize) -> Batch {
        let mut b = Batch::new(VecDeque::new(), Instant::now());
        for _ in 0..n {
            b.push(Message::new(AgentId::nil(), AgentId::nil(), "x"));
        }
        b
    }

    #[test]
    fn reservations_bound_the_inbox_until_messages_are_handed_out() {
        let inbox = Inbox::new(AgentId::nil(), 3, usize::MAX);
        for _ in 0..3 {
            inbox.try_reserve(97).unwrap();
        }
        assert_eq!(inbox.try_reserve(97), Err(NoRoom::Full));
        inbox.push(batch(3)).unwrap();
        assert_eq!(inbox.queued(), 3);
        let mut taken = VecDeque::new();
        assert_eq!(inbox.take_all(&mut taken), 3);
        assert_eq!(inbox.queued(), 0);
        assert_eq!(
            inbox.try_reserve(97),
            Err(NoRoom::Full),
            "read ahead, not handed out"
        );
        inbox.release(3, 3 * 97);
        assert_eq!(inbox.reserved(), 0);
        assert!(inbox.try_reserve(97).is_ok());
    }

    #[test]
    fn closed_inbox_refuses_and_hands_back() {
        let inbox = Inbox::new(AgentId::nil(), 8, usize::MAX);
        inbox.try_reserve(97).unwrap();
        inbox.close();
        assert_eq!(inbox.try_reserve(97), Err(NoRoom::Closed));
        let refused = inbox.push(batch(1)).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(inbox.reserved(), 0);
    }

    #[test]
    fn reservations_bound_the_bytes_too() {
        let inbox = Inbox::new(AgentId::nil(), 100, 1_000);
        inbox.try_reserve(600).unwrap();
        assert_eq!(inbox.try_reserve(600), Err(NoRoom::Full));
        inbox.try_reserve(400).unwrap();
        assert_eq!(inbox.reserved_bytes(), 1_000);
        inbox.release(2, 1_000);
        inbox
            .try_reserve(5_000)
            .expect("one large message fits an empty inbox");
        assert_eq!(inbox.try_reserve(1), Err(NoRoom::Full));
    }

    #[test]
    fn idle_is_claimed_once() {
        let inbox = Inbox::new(AgentId::nil(), 8, usize::MAX);
        assert!(!inbox.claim_idle());
        inbox.set_idle(true);
        assert!(inbox.claim_idle());
        assert!(!inbox.claim_idle());
    }
}

#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use hive_types::Message;
    use loom::sync::Arc;

    fn one() -> (Batch, usize) {
        let m = Message::new(AgentId::nil(), AgentId::nil(), "x");
        let size = m.accounted_len();
        let mut b = Batch::new(VecDeque::new(), Instant::now());
        b.push(m);
        (b, size)
    }

    /// Two senders race the consumer and a close on an inbox of one slot:
    /// the room is never over-reserved, every accepted message is taken or
    /// drained (never lost), and all room comes back.
    #[test]
    fn loom_reserve_push_take_and_close_lose_nothing() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let inbox = Arc::new(Inbox::new(AgentId::nil(), 2, usize::MAX));
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let inbox = inbox.clone();
                    loom::thread::spawn(move || {
                        let (batch, size) = one();
                        if inbox.try_reserve(size).is_err() {
                            return 0;
                        }
                        assert!(inbox.reserved() <= 2, "over-reserved");
                        usize::from(inbox.push(batch).is_ok())
                    })
                })
                .collect();
            let closer = {
                let inbox = inbox.clone();
                loom::thread::spawn(move || inbox.close())
            };
            let mut taken = VecDeque::new();
            let n = inbox.take_all(&mut taken);
            let bytes: usize = taken.iter().map(|b| b.bytes).sum();
            inbox.release(n, bytes);
            let queued: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
            closer.join().unwrap();
            let left: usize = inbox.drain().iter().map(Batch::len).sum();
            assert_eq!(n + left, queued, "an accepted message went missing");
            assert_eq!(inbox.reserved(), 0, "room leaked");
        });
    }
}
