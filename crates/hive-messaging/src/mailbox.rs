//! [`Mailbox`]: the receiving end an agent gets when it registers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use event_listener::{listener, Listener};
use hive_types::{AgentId, HiveError, HiveResult, Message, Priority};

use crate::batch::Batch;
use crate::inbox::Inbox;
use crate::lanes::Lanes;
use crate::shared::Shared;
use crate::undelivered::UndeliveredReason;

/// The receiving end of one agent.
///
/// Messages come out by priority: every queued `Critical` message before
/// any `High` one, then `Normal`, then `Low`; within one priority, in the
/// order they arrived, so messages of one priority from one sender keep
/// their order. Aging keeps low priorities moving: a `Low` or `Normal`
/// message that has waited longer than
/// [`CommunicatorConfig::aging_threshold`](crate::CommunicatorConfig::aging_threshold)
/// gets every other turn until its lane has caught up.
///
/// A message whose time to live ran out before it came to the front is
/// not handed out: it is reported undelivered as
/// [`Expired`](crate::UndeliveredReason::Expired).
///
/// Dropping a mailbox unregisters its agent; whatever was still queued for
/// it becomes undelivered (see
/// [`Communicator::take_undelivered`](crate::Communicator::take_undelivered)).
pub struct Mailbox {
    inbox: Arc<Inbox>,
    shared: Arc<Shared>,
    /// Messages taken from the inbox, not yet handed out.
    lanes: Lanes,
    /// Batches just taken from the inbox (kept to reuse its buffer).
    taken: VecDeque<Batch>,
    /// Messages taken out of the lanes since the last settlement: their
    /// room is still reserved.
    unsettled: usize,
    /// Their bytes.
    unsettled_bytes: usize,
    /// Of those, handed to the consumer (the rest expired).
    handed: usize,
    /// Settle at least this often (a fraction of the capacity).
    settle_every: usize,
}

/// How long an idle receiver lets a still-sending sender claim the idle
/// flag before asking the flusher for batches held for it.
const POKE_AFTER: Duration = Duration::from_micros(100);

fn closed() -> HiveError {
    HiveError::Closed { what: "mailbox" }
}

impl Mailbox {
    /// The consumer end of `inbox`: an agent's, or a transport link's.
    /// Its deliveries count in the communicator's stats.
    pub(crate) fn new(inbox: Arc<Inbox>, shared: Arc<Shared>) -> Self {
        shared.track_inbox(&inbox);
        let settle_every = (inbox.capacity / 8).clamp(1, 256);
        Mailbox {
            inbox,
            shared,
            lanes: Lanes::default(),
            taken: VecDeque::new(),
            unsettled: 0,
            unsettled_bytes: 0,
            handed: 0,
            settle_every,
        }
    }

    /// The agent this mailbox belongs to.
    pub fn agent(&self) -> AgentId {
        self.inbox.agent
    }

    /// Messages ready to be received now (not counting those still held in
    /// senders' batches).
    pub fn len(&self) -> usize {
        self.lanes.len() + self.inbox.queued()
    }

    /// How long the oldest message waiting here has waited (zero when none
    /// waits): how far behind its consumer is.
    pub fn lag(&self) -> Duration {
        let queued = self.inbox.oldest(self.shared.epoch());
        let ahead = self.lanes.oldest();
        let oldest = match (queued, ahead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        oldest.map_or(Duration::ZERO, |at| at.elapsed())
    }

    /// Whether no message is ready now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next message if one is ready: `Ok(None)` when empty,
    /// `Err(Closed)` once the mailbox is closed and drained.
    pub fn try_recv(&mut self) -> HiveResult<Option<Message>> {
        if let Some(m) = self.next_ready() {
            return Ok(Some(m));
        }
        if self.inbox.is_closed() {
            // A batch queued just before the close may have arrived after
            // the look above: seeing `closed` means seeing it now.
            return self.next_ready().map(Some).ok_or_else(closed);
        }
        Ok(None)
    }

    /// The next message, waiting for one; `Err(Closed)` once the mailbox is
    /// closed and drained.
    pub fn recv(&mut self) -> HiveResult<Message> {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv), giving up after `timeout` with
    /// [`HiveError::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> HiveResult<Message> {
        self.recv_until(Some((Instant::now() + timeout, timeout)))
    }

    /// The blocking receive: ready mail, else a short spin (under load a
    /// full batch is a moment away), else wait idle. Senders flush to an
    /// idle mailbox at once; if batches are still held for it after
    /// [`POKE_AFTER`], the flusher is asked to hand them over.
    fn recv_until(&mut self, deadline: Option<(Instant, Duration)>) -> HiveResult<Message> {
        if let Some(m) = self.next_ready() {
            return Ok(m);
        }
        if let Some(m) = self.spin_for_mail() {
            return Ok(m);
        }
        let mut poked = false;
        let inbox = self.inbox.clone();
        loop {
            listener!(inbox.not_empty.event() => listener);
            inbox.not_empty.arm();
            if let Some(done) = self.go_idle() {
                return done;
            }
            let mut until = deadline.map(|(d, _)| d);
            let hold_back = !poked && self.inbox.has_partial_batches();
            if hold_back {
                let poke_at = Instant::now() + POKE_AFTER;
                until = Some(until.map_or(poke_at, |d| d.min(poke_at)));
            }
            let woken = match until {
                None => {
                    listener.wait();
                    true
                }
                Some(until) => listener.wait_deadline(until).is_some(),
            };
            let timed_out = deadline.is_some_and(|(d, _)| Instant::now() >= d);
            if hold_back && !woken && !timed_out {
                // Still idle (the flags stay set, so the flusher sees a
                // waiting consumer): ask for the held batches, wait again.
                self.shared.flusher.poke_idle();
                poked = true;
                continue;
            }
            self.inbox.set_idle(false);
            if timed_out && !woken {
                let timeout = deadline.map_or(Duration::ZERO, |(_, t)| t);
                return self.next_ready().ok_or(HiveError::Timeout {
                    what: "recv",
                    after: timeout,
                });
            }
        }
    }

    /// The next message, from async code. Without a timer at hand, an idle
    /// async receiver asks the flusher for held batches at once.
    ///
    /// One async consumer per mailbox: its waker is kept in one slot, so
    /// waiting allocates nothing.
    pub async fn recv_async(&mut self) -> HiveResult<Message> {
        loop {
            if let Some(m) = self.next_ready() {
                return Ok(m);
            }
            // Register, then go idle and look once more: a batch queued
            // after that look wakes the registered waker.
            let mut idle = false;
            let done = std::future::poll_fn(|cx| {
                if idle {
                    return Poll::Ready(None);
                }
                self.inbox.consumer_waker.register(cx.waker());
                idle = true;
                if let Some(done) = self.go_idle() {
                    return Poll::Ready(Some(done));
                }
                if self.inbox.has_partial_batches() {
                    self.shared.flusher.poke_idle();
                }
                Poll::Pending
            })
            .await;
            if let Some(done) = done {
                return done;
            }
            self.inbox.set_idle(false);
        }
    }

    /// Waits for at least one message, then moves up to `max` ready ones
    /// into `buf` without waiting further. Returns how many were moved.
    pub fn recv_many(&mut self, buf: &mut Vec<Message>, max: usize) -> HiveResult<usize> {
        if max == 0 {
            return Ok(0);
        }
        buf.push(self.recv()?);
        Ok(1 + self.drain_ready(buf, max - 1))
    }

    /// [`recv_many`](Self::recv_many) from async code.
    pub async fn recv_many_async(
        &mut self,
        buf: &mut Vec<Message>,
        max: usize,
    ) -> HiveResult<usize> {
        if max == 0 {
            return Ok(0);
        }
        buf.push(self.recv_async().await?);
        Ok(1 + self.drain_ready(buf, max - 1))
    }

    /// Moves up to `max` ready messages into `buf` without waiting:
    /// `Ok(0)` when none is ready, `Err(Closed)` once closed and drained.
    pub fn try_recv_many(&mut self, buf: &mut Vec<Message>, max: usize) -> HiveResult<usize> {
        let n = self.drain_ready(buf, max);
        if n == 0 && max > 0 && self.inbox.is_closed() {
            // See `try_recv`: look once more after seeing the close.
            let late = self.drain_ready(buf, max);
            return if late > 0 { Ok(late) } else { Err(closed()) };
        }
        Ok(n)
    }

    /// Registers `hook`, called whenever a batch arrives: for consumers that
    /// a scheduler runs in turns (hive-core runs each sync agent on the CPU
    /// balancer) rather than a thread blocked in `recv`; [`Turns`](crate::Turns)
    /// is the rest of that protocol. Only one hook can be set; a second
    /// gives the error back.
    pub fn on_ready(&mut self, hook: impl Fn() + Send + Sync + 'static) -> HiveResult<()> {
        self.inbox
            .ready_hook
            .set(Box::new(hook))
            .map_err(|_| HiveError::AlreadySet {
                what: "this mailbox's ready hook",
            })
    }

    /// Marks the consumer idle without blocking: senders flush to it at
    /// once, and batches they hold for it are asked for. Returns whether
    /// mail is ready after all (then the consumer should run again).
    /// [`Turns::look_again`](crate::Turns::look_again) calls it.
    pub fn declare_idle(&mut self) -> bool {
        self.settle();
        self.inbox.set_idle(true);
        if self.inbox.has_partial_batches() {
            self.shared.flusher.poke_idle();
        }
        !self.is_empty() || self.inbox.is_closed()
    }

    /// Marks the consumer busy (running): senders batch for it again.
    /// [`Turns::begin`](crate::Turns::begin) calls it.
    pub fn declare_busy(&mut self) {
        self.inbox.set_idle(false);
    }

    /// A handle that watches this mailbox from elsewhere: its depth and lag
    /// (for metrics), the highest priority queued since last asked (for a
    /// scheduler), and closing it (to stop its consumer).
    pub fn probe(&self) -> MailboxProbe {
        MailboxProbe {
            inbox: self.inbox.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Whether the mailbox is closed (no more mail will come once drained).
    pub fn is_closed(&self) -> bool {
        self.inbox.is_closed()
    }

    /// Stops accepting messages and unregisters the agent; messages already
    /// queued can still be received, after which receiving says `Closed`.
    pub fn close(&mut self) {
        self.inbox.close();
        self.unregister();
    }

    /// Closes the mailbox and reports every message still in it as
    /// undelivered for `reason` (a consumer that stops without handling its
    /// mail). Returns how many there were.
    pub fn discard(&mut self, reason: UndeliveredReason) -> usize {
        self.close();
        self.discard_held(reason)
    }

    fn discard_held(&mut self, reason: UndeliveredReason) -> usize {
        self.settle();
        let mut leftovers = self.lanes.drain();
        let held = leftovers.len();
        let held_bytes: usize = leftovers.iter().map(Message::accounted_len).sum();
        for mut batch in self.inbox.drain() {
            leftovers.extend(batch.messages.drain(..));
            self.shared.recycler.give(batch.messages);
        }
        // The lanes' room was still reserved; the inbox's drain gave its own.
        self.inbox.release(held, held_bytes);
        self.inbox.publish_ahead(0, None);
        let n = leftovers.len();
        self.shared.undeliverable(leftovers, reason);
        n
    }

    fn drain_ready(&mut self, buf: &mut Vec<Message>, max: usize) -> usize {
        let mut moved = 0;
        while moved < max {
            match self.next_ready() {
                Some(m) => {
                    buf.push(m);
                    moved += 1;
                }
                None => break,
            }
        }
        moved
    }

    /// The next message by priority: takes in what arrived first (it may be
    /// more urgent than what was read ahead), skips expired messages.
    #[inline]
    fn next_ready(&mut self) -> Option<Message> {
        loop {
            if self.inbox.queued() > 0 {
                self.refill();
            }
            let Some(m) = self.lanes.pop(self.shared.config.aging_threshold) else {
                self.settle();
                return None;
            };
            self.unsettled += 1;
            self.unsettled_bytes += m.accounted_len();
            if m.ttl.is_some() && m.is_expired() {
                self.shared.undeliverable([m], UndeliveredReason::Expired);
                continue;
            }
            self.handed += 1;
            if self.unsettled >= self.settle_every || self.lanes.len() == 0 {
                self.settle();
            } else {
                self.inbox.publish_ahead_len(self.lanes.len());
            }
            return Some(m);
        }
    }

    /// Gives back the room of the messages taken out since the last call,
    /// counts the handed-out ones as delivered, and publishes the read-ahead.
    fn settle(&mut self) {
        for spent in self.lanes.take_spent() {
            if spent.capacity() > 0 {
                self.shared.recycler.give(spent);
            }
        }
        if self.unsettled == 0 {
            return;
        }
        // Counted delivered before their room is released: a message is
        // always in one count or the other (transports' `settle` relies on it).
        self.inbox.add_delivered(self.handed);
        self.inbox.release(self.unsettled, self.unsettled_bytes);
        self.shared.recorders.delivered(self.handed);
        let oldest = self.lanes.oldest().map(|at| self.shared.nanos(at));
        self.inbox.publish_ahead(self.lanes.len(), oldest);
        self.unsettled = 0;
        self.unsettled_bytes = 0;
        self.handed = 0;
    }

    /// Spins briefly for mail before going idle.
    fn spin_for_mail(&mut self) -> Option<Message> {
        let backoff = Backoff::new();
        while !backoff.is_completed() && !self.inbox.is_closed() {
            backoff.snooze();
            if let Some(m) = self.next_ready() {
                return Some(m);
            }
        }
        None
    }

    /// Marks the mailbox idle (a listener is already registered) and checks
    /// once more; `Some` when there is no need to wait after all.
    fn go_idle(&mut self) -> Option<HiveResult<Message>> {
        self.inbox.set_idle(true);
        if let Some(m) = self.next_ready() {
            self.inbox.set_idle(false);
            return Some(Ok(m));
        }
        if self.inbox.is_closed() {
            self.inbox.set_idle(false);
            return Some(self.next_ready().ok_or_else(closed));
        }
        None
    }

    /// Takes every queued batch into the lanes; recycles their buffers.
    fn refill(&mut self) -> bool {
        if self.inbox.take_all(&mut self.taken) == 0 {
            return false;
        }
        let now = Instant::now();
        while let Some(batch) = self.taken.pop_front() {
            self.shared
                .recorders
                .taken(now.saturating_duration_since(batch.started));
            self.lanes.absorb(batch);
        }
        let oldest = self.lanes.oldest().map(|at| self.shared.nanos(at));
        self.inbox.publish_ahead(self.lanes.len(), oldest);
        true
    }

    fn unregister(&self) {
        self.shared.unregister_inbox(&self.inbox);
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.inbox.close();
        self.unregister();
        self.discard_held(UndeliveredReason::NoRecipient);
        self.shared.retire_inbox(&self.inbox);
    }
}

/// Watches a mailbox from outside its consumer; see [`Mailbox::probe`].
#[derive(Clone)]
pub struct MailboxProbe {
    inbox: Arc<Inbox>,
    shared: Arc<Shared>,
}

impl MailboxProbe {
    /// The agent the mailbox belongs to.
    pub fn agent(&self) -> AgentId {
        self.inbox.agent
    }

    /// The highest priority queued since the last call (`Low` when none).
    pub fn take_priority(&self) -> Priority {
        Priority::from_index(usize::from(self.inbox.take_pending_priority()))
            .unwrap_or(Priority::Low)
    }

    /// Messages waiting for the consumer (queued or read ahead).
    pub fn depth(&self) -> usize {
        self.inbox.depth()
    }

    /// Messages accepted for this mailbox and not yet handed out: waiting,
    /// plus those still held in senders' batches.
    pub fn accepted(&self) -> usize {
        self.inbox.reserved()
    }

    /// How long the oldest message waiting has waited; see [`Mailbox::lag`].
    pub fn lag(&self) -> Duration {
        self.inbox
            .oldest(self.shared.epoch())
            .map_or(Duration::ZERO, |at| at.elapsed())
    }

    /// Messages the consumer has taken so far.
    pub fn delivered(&self) -> u64 {
        self.inbox.delivered()
    }

    /// Whether the mailbox is closed.
    pub fn is_closed(&self) -> bool {
        self.inbox.is_closed()
    }

    /// Closes the mailbox to new mail and unregisters its agent; the
    /// consumer still receives what was queued, then `Closed`.
    pub fn close(&self) {
        self.inbox.close();
        self.shared.unregister_inbox(&self.inbox);
    }
}

impl fmt::Debug for MailboxProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxProbe")
            .field("agent", &self.inbox.agent)
            .field("depth", &self.depth())
            .finish()
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("agent", &self.inbox.agent)
            .field("ready", &self.len())
            .field("closed", &self.inbox.is_closed())
            .finish()
    }
}
