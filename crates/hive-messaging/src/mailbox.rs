//! [`Mailbox`]: the receiving end an agent gets when it registers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use event_listener::{listener, Listener};
use hive_types::{AgentId, HiveError, HiveResult, Message, Priority};

use crate::inbox::Inbox;
use crate::shared::{lock, Shared};

/// The receiving end of one agent. Messages from one sender arrive in the
/// order they were sent; batches from different senders arrive in the
/// order they were flushed.
///
/// Dropping a mailbox unregisters its agent; whatever was still queued for
/// it becomes undeliverable (see
/// [`Communicator::take_undelivered`](crate::Communicator::take_undelivered)).
pub struct Mailbox {
    inbox: Arc<Inbox>,
    shared: Arc<Shared>,
    /// The batch being handed out, message by message.
    current: VecDeque<Message>,
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
        lock(&shared.all_inboxes).push(Arc::downgrade(&inbox));
        Mailbox {
            inbox,
            shared,
            current: VecDeque::new(),
        }
    }

    /// The agent this mailbox belongs to.
    pub fn agent(&self) -> AgentId {
        self.inbox.agent
    }

    /// Messages ready to be received now (not counting those still held in
    /// senders' batches).
    pub fn len(&self) -> usize {
        self.current.len() + self.inbox.queued()
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
            return Err(closed());
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
            listener!(inbox.not_empty => listener);
            if let Some(done) = self.go_idle() {
                return done;
            }
            let mut until = deadline.map(|(d, _)| d);
            let hold_back = !poked && self.inbox.partial_batches.load(Ordering::SeqCst) > 0;
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
    pub async fn recv_async(&mut self) -> HiveResult<Message> {
        loop {
            if let Some(m) = self.next_ready() {
                return Ok(m);
            }
            if self.inbox.is_closed() {
                return Err(closed());
            }
            let listener = self.inbox.not_empty.listen();
            if let Some(done) = self.go_idle() {
                return done;
            }
            if self.inbox.partial_batches.load(Ordering::SeqCst) > 0 {
                self.shared.flusher.poke_idle();
            }
            listener.await;
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
            return Err(closed());
        }
        Ok(n)
    }

    /// Registers `hook`, called whenever a batch arrives: for consumers that
    /// a scheduler runs (hive-core runs each agent on the CPU balancer)
    /// rather than a thread blocked in `recv`. Such a consumer calls
    /// [`declare_idle`](Self::declare_idle) when it stops for lack of mail
    /// and [`declare_busy`](Self::declare_busy) when it runs again. Only one
    /// hook can be set; a second gives the error back.
    pub fn on_ready(&mut self, hook: impl Fn() + Send + Sync + 'static) -> HiveResult<()> {
        self.inbox
            .ready_hook
            .set(Box::new(hook))
            .map_err(|_| HiveError::Config {
                field: "on_ready",
                reason: "a ready hook is already set for this mailbox".into(),
            })
    }

    /// Marks the consumer idle without blocking: senders flush to it at
    /// once, and batches they hold for it are asked for. Returns whether
    /// mail is ready after all (then the consumer should run again).
    pub fn declare_idle(&mut self) -> bool {
        self.inbox.set_idle(true);
        if self.inbox.partial_batches.load(Ordering::SeqCst) > 0 {
            self.shared.flusher.poke_idle();
        }
        !self.is_empty() || self.inbox.is_closed()
    }

    /// Marks the consumer busy (running): senders batch for it again.
    pub fn declare_busy(&mut self) {
        self.inbox.set_idle(false);
    }

    /// A handle that reads the highest priority queued since it was last
    /// read, without borrowing the mailbox (a scheduler holds it).
    pub fn pending_priority(&self) -> PendingPriority {
        PendingPriority(self.inbox.clone())
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

    fn drain_ready(&mut self, buf: &mut Vec<Message>, max: usize) -> usize {
        let mut moved = 0;
        while moved < max {
            if self.current.is_empty() && !self.refill() {
                break;
            }
            let take = (max - moved).min(self.current.len());
            buf.extend(self.current.drain(..take));
            moved += take;
        }
        moved
    }

    #[inline]
    fn next_ready(&mut self) -> Option<Message> {
        if let Some(m) = self.current.pop_front() {
            return Some(m);
        }
        if self.refill() {
            return self.current.pop_front();
        }
        None
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
            return Some(Err(closed()));
        }
        None
    }

    /// Takes the next queued batch into `current`; recycles the old buffer.
    fn refill(&mut self) -> bool {
        let Some(batch) = self.inbox.pop() else {
            return false;
        };
        let n = batch.len();
        self.inbox.add_delivered(n);
        self.shared.recorders.delivered(n, batch.started.elapsed());
        let spent = std::mem::replace(&mut self.current, batch.messages);
        if spent.capacity() > 0 {
            self.shared.recycler.give(spent);
        }
        true
    }

    fn unregister(&self) {
        let mut registry = self
            .shared
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if registry
            .get(&self.inbox.agent)
            .is_some_and(|i| Arc::ptr_eq(i, &self.inbox))
        {
            registry.remove(&self.inbox.agent);
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.inbox.close();
        self.unregister();
        let mut leftovers: Vec<Message> = self.current.drain(..).collect();
        for mut batch in self.inbox.drain() {
            leftovers.extend(batch.messages.drain(..));
            self.shared.recycler.give(batch.messages);
        }
        if !leftovers.is_empty() {
            self.inbox
                .abandoned
                .fetch_add(leftovers.len() as u64, Ordering::Relaxed);
            self.shared.undeliverable(leftovers);
        }
        let mut retired = lock(&self.shared.retired);
        retired.1 += self.inbox.take_delivered();
    }
}

/// The highest priority queued in a mailbox since the last
/// [`take`](PendingPriority::take); see [`Mailbox::pending_priority`].
pub struct PendingPriority(Arc<Inbox>);

impl PendingPriority {
    /// The highest priority queued since the last call (`Low` when none).
    pub fn take(&self) -> Priority {
        let p = self.0.pending_priority.swap(0, Ordering::AcqRel);
        Priority::from_index(usize::from(p)).unwrap_or(Priority::Low)
    }
}

impl fmt::Debug for PendingPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PendingPriority")
            .field(&self.0.agent)
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
