//! The shared side of a mailbox: a bounded queue of batches.
//!
//! Capacity is counted in messages and *reserved when a message is
//! accepted*, even while it still sits in a sender's batch, so a flush never
//! fails for lack of room and `try_send` on a full mailbox hands the message
//! straight back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam_utils::CachePadded;
use event_listener::Event;
use hive_types::AgentId;

use crate::batch::Batch;

/// Why a slot could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    Full,
    Closed,
}

// Fields are grouped by who writes them, each group on its own cache line:
// a consumer polling its queue must not slow down senders that reserve room.
pub(crate) struct Inbox {
    pub(crate) agent: AgentId,
    pub(crate) capacity: usize,
    /// The write queue of a link to another process (its `agent` is the
    /// link's id), rather than a local agent's mailbox.
    pub(crate) remote: bool,
    closed: AtomicBool,
    /// Messages accepted for this inbox: queued plus held in senders'
    /// batches. Written by senders per message.
    reserved: CachePadded<AtomicUsize>,
    /// Senders' batches for this inbox that are started but not flushed.
    pub(crate) partial_batches: CachePadded<AtomicUsize>,
    queue: CachePadded<Mutex<VecDeque<Batch>>>,
    /// Messages in the queue: lets the consumer poll without the lock.
    queued: CachePadded<AtomicUsize>,
    consumer: CachePadded<ConsumerFlags>,
    pub(crate) not_empty: Event,
    pub(crate) not_full: Event,
    /// Messages left in it when its consumer went away (reported undeliverable).
    pub(crate) abandoned: AtomicU64,
    /// Called after every batch is queued (consumers driven by a scheduler).
    pub(crate) ready_hook: std::sync::OnceLock<ReadyHook>,
    /// Highest priority queued since the consumer last looked.
    pub(crate) pending_priority: std::sync::atomic::AtomicU8,
}

/// What a scheduler-driven consumer runs when mail arrives.
pub(crate) type ReadyHook = Box<dyn Fn() + Send + Sync>;

/// Written by the consumer when it waits, read by senders per message.
struct ConsumerFlags {
    /// The consumer is waiting and no sender has woken it yet.
    idle: AtomicBool,
    /// The consumer is blocked waiting for mail.
    waiting: AtomicBool,
    /// Messages the consumer took out of the queue (single writer).
    delivered: AtomicU64,
}

impl Inbox {
    pub(crate) fn new(agent: AgentId, capacity: usize) -> Self {
        Inbox::with_kind(agent, capacity, false)
    }

    /// The outgoing queue of a link to another process.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn new_remote(link: AgentId, capacity: usize) -> Self {
        Inbox::with_kind(link, capacity, true)
    }

    fn with_kind(agent: AgentId, capacity: usize, remote: bool) -> Self {
        Inbox {
            agent,
            capacity,
            remote,
            closed: AtomicBool::new(false),
            reserved: CachePadded::new(AtomicUsize::new(0)),
            partial_batches: CachePadded::new(AtomicUsize::new(0)),
            queue: CachePadded::new(Mutex::new(VecDeque::new())),
            queued: CachePadded::new(AtomicUsize::new(0)),
            consumer: CachePadded::new(ConsumerFlags {
                idle: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
                delivered: AtomicU64::new(0),
            }),
            not_empty: Event::new(),
            not_full: Event::new(),
            abandoned: AtomicU64::new(0),
            ready_hook: std::sync::OnceLock::new(),
            pending_priority: std::sync::atomic::AtomicU8::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Batch>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves room for one message.
    #[inline]
    pub(crate) fn try_reserve(&self) -> Result<(), NoRoom> {
        if self.closed.load(Ordering::Acquire) {
            return Err(NoRoom::Closed);
        }
        let mut used = self.reserved.load(Ordering::Relaxed);
        loop {
            if used >= self.capacity {
                return Err(NoRoom::Full);
            }
            match self.reserved.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Gives back `n` reserved slots and wakes senders waiting for room.
    pub(crate) fn release(&self, n: usize) {
        if n > 0 {
            self.reserved.fetch_sub(n, Ordering::AcqRel);
            self.not_full.notify(usize::MAX);
        }
    }

    /// Queues a batch whose messages hold reservations. A closed inbox
    /// hands the batch back (its reservations released).
    pub(crate) fn push(&self, batch: Batch) -> Result<(), Batch> {
        let n = batch.len();
        {
            let mut queue = self.lock();
            if self.closed.load(Ordering::Acquire) {
                drop(queue);
                self.release(n);
                return Err(batch);
            }
            self.pending_priority
                .fetch_max(batch.top_priority as u8, Ordering::AcqRel);
            queue.push_back(batch);
            self.queued.fetch_add(n, Ordering::Release);
        }
        self.not_empty.notify(1);
        if let Some(hook) = self.ready_hook.get() {
            hook();
        }
        Ok(())
    }

    /// Takes the oldest queued batch and releases its reservations. Looks
    /// at the queue's counter first, so polling an empty inbox takes no lock.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Batch> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let batch = self.lock().pop_front()?;
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        self.release(batch.len());
        Some(batch)
    }

    /// Messages queued (not counting those still in senders' batches).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Messages accepted for this inbox and not yet taken by its consumer.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Marks the consumer as waiting (or not).
    pub(crate) fn set_idle(&self, idle: bool) {
        self.consumer.waiting.store(idle, Ordering::SeqCst);
        self.consumer.idle.store(idle, Ordering::SeqCst);
    }

    /// Whether the consumer is blocked waiting for mail.
    pub(crate) fn is_waiting(&self) -> bool {
        self.consumer.waiting.load(Ordering::SeqCst)
    }

    /// Counts messages the consumer took (called by the single consumer).
    pub(crate) fn add_delivered(&self, n: usize) {
        let d = &self.consumer.delivered;
        d.store(d.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
    }

    /// Messages the consumer took so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.consumer.delivered.load(Ordering::Relaxed)
    }

    /// Hands the delivered count over (to the retired totals) and zeroes it.
    pub(crate) fn take_delivered(&self) -> u64 {
        self.consumer.delivered.swap(0, Ordering::Relaxed)
    }

    /// Whether the consumer is waiting; the first sender to see it claims
    /// the wake-up, so one idle period triggers one immediate flush.
    #[inline]
    pub(crate) fn claim_idle(&self) -> bool {
        let idle = &self.consumer.idle;
        idle.load(Ordering::Relaxed) && idle.swap(false, Ordering::AcqRel)
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
        self.not_empty.notify(usize::MAX);
        self.not_full.notify(usize::MAX);
    }

    /// Removes every queued batch (for a mailbox dropped with mail in it).
    pub(crate) fn drain(&self) -> Vec<Batch> {
        let drained: Vec<Batch> = self.lock().drain(..).collect();
        let n: usize = drained.iter().map(Batch::len).sum();
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.release(n);
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
    use std::time::Instant;

    fn batch(n: usize) -> Batch {
        let mut b = Batch::new(VecDeque::new(), Instant::now());
        for _ in 0..n {
            b.push(Message::new(AgentId::nil(), AgentId::nil(), "x"));
        }
        b
    }

    #[test]
    fn reservations_bound_the_inbox() {
        let inbox = Inbox::new(AgentId::nil(), 3);
        for _ in 0..3 {
            inbox.try_reserve().unwrap();
        }
        assert_eq!(inbox.try_reserve(), Err(NoRoom::Full));
        inbox.push(batch(3)).unwrap();
        assert_eq!(inbox.queued(), 3);
        assert_eq!(inbox.pop().unwrap().len(), 3);
        assert_eq!(inbox.reserved(), 0);
        assert!(inbox.try_reserve().is_ok());
    }

    #[test]
    fn closed_inbox_refuses_and_hands_back() {
        let inbox = Inbox::new(AgentId::nil(), 8);
        inbox.try_reserve().unwrap();
        inbox.close();
        assert_eq!(inbox.try_reserve(), Err(NoRoom::Closed));
        let refused = inbox.push(batch(1)).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(inbox.reserved(), 0);
    }

    #[test]
    fn idle_is_claimed_once() {
        let inbox = Inbox::new(AgentId::nil(), 8);
        assert!(!inbox.claim_idle());
        inbox.set_idle(true);
        assert!(inbox.claim_idle());
        assert!(!inbox.claim_idle());
    }
}
