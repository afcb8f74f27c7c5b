//! [`Sender`]: batches messages per destination and hands them to mailboxes.

use std::collections::hash_map::Entry;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::EventListener;
use hive_types::{AgentId, HiveError, Message, MessageKind, Priority, Recipient, Rejected};

use crate::batch::{Batch, FlushReason};
use crate::idmap::IdMap;
use crate::inbox::{Inbox, NoRoom};
use crate::requests::Offered;
use crate::shared::{HeldBatches, Shared, NEVER};
use crate::stats::SendCounts;
use crate::undelivered::UndeliveredReason;
use crate::wait::{run_blocking, Await, AwaitOr, Block, BlockUntil, Wait};
use hive_types::sync::lock;

/// A handle that sends messages. Cheap to clone; each clone batches on its
/// own, so order is kept per (sender handle, recipient, priority).
///
/// Made by [`Communicator::sender`](crate::Communicator::sender). Dropping it
/// flushes what it still holds.
///
/// Every way of sending comes in a blocking form (`send`, `send_timeout`)
/// and an async one (`send_async`, `send_async_timeout`); the async forms
/// work on any executor, and take the executor's timer for their timeout.
pub struct Sender {
    pub(crate) core: Arc<SenderCore>,
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct SenderCore {
    pub(crate) state: Mutex<SenderState>,
    /// Earliest time one of this sender's batches is due (NEVER if none).
    pub(crate) next_deadline: AtomicU64,
}

#[derive(Default)]
pub(crate) struct SenderState {
    routes: IdMap<Route>,
    counts: SendCounts,
}

/// This sender's path to one destination: its inbox and open batch.
struct Route {
    inbox: Arc<Inbox>,
    batch: Option<Batch>,
}

/// Why a message was not accepted.
pub(crate) enum Refusal {
    Full(Arc<Inbox>),
    Unknown(AgentId),
    Closed,
}

impl Refusal {
    pub(crate) fn into_error(self) -> HiveError {
        match self {
            Refusal::Full(inbox) => HiveError::Full {
                what: "mailbox",
                capacity: inbox.capacity,
            },
            Refusal::Unknown(agent) => HiveError::UnknownAgent(agent),
            Refusal::Closed => HiveError::Closed {
                what: "communicator",
            },
        }
    }
}

pub(crate) enum Attempt {
    Sent,
    Refused(Message, HiveError),
    Wait(Message, EventListener),
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let core = Arc::new(SenderCore {
            state: Mutex::new(SenderState::default()),
            next_deadline: AtomicU64::new(NEVER),
        });
        let held: Arc<dyn HeldBatches> = core.clone();
        lock(&shared.senders).push(Arc::downgrade(&held));
        Sender { core, shared }
    }

    /// Sends `message`, waiting while the recipient's mailbox is full. A
    /// [`Recipient::Broadcast`] message goes to every other registered agent.
    ///
    /// Refuses (and hands back) the message when the recipient is not
    /// registered or the communicator is closed.
    pub fn send(&self, message: Message) -> Result<(), Rejected<Message>> {
        match self.first_attempt(message) {
            Ok(done) => done,
            Err((m, listener)) => run_blocking(self.deliver_after(m, listener, &mut Block)),
        }
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room; then
    /// hands the message back with [`HiveError::Timeout`]. For a broadcast
    /// the timeout covers every recipient, and the error means some did not
    /// get it (see [`broadcast_timeout`](Self::broadcast_timeout) for which).
    pub fn send_timeout(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<(), Rejected<Message>> {
        match self.first_attempt(message) {
            Ok(done) => done,
            Err((m, listener)) => {
                run_blocking(self.deliver_after(m, listener, &mut BlockUntil::new(timeout)))
            }
        }
    }

    /// Sends `message` from async code, awaiting room in a full mailbox.
    pub async fn send_async(&self, message: Message) -> Result<(), Rejected<Message>> {
        match self.first_attempt(message) {
            Ok(done) => done,
            Err((m, listener)) => self.deliver_after(m, listener, &mut Await).await,
        }
    }

    /// Like [`send_async`](Self::send_async), giving up when `give_up`
    /// completes: pass your runtime's timer, for example
    /// `tokio::time::sleep(timeout)`. `timeout` is what the error reports.
    /// Unlike wrapping `send_async` in a timeout, this hands the message
    /// back instead of dropping it.
    pub async fn send_async_timeout(
        &self,
        message: Message,
        timeout: Duration,
        give_up: impl Future<Output = ()> + Send,
    ) -> Result<(), Rejected<Message>> {
        match self.first_attempt(message) {
            Ok(done) => done,
            Err((m, listener)) => {
                self.deliver_after(m, listener, &mut AwaitOr::new(give_up, timeout))
                    .await
            }
        }
    }

    /// The fast path every send starts with, without building a future: a
    /// message to one agent that fits is accepted here. `Err` carries what
    /// must wait (a full mailbox: with the listener to wait on) or go
    /// through the general path (a broadcast: no listener).
    #[inline]
    fn first_attempt(
        &self,
        message: Message,
    ) -> Result<Result<(), Rejected<Message>>, (Message, Option<EventListener>)> {
        let Recipient::Agent(to) = message.recipient else {
            return Err((message, None));
        };
        match self.attempt(to, message) {
            Attempt::Sent => Ok(Ok(())),
            Attempt::Refused(m, e) => Ok(Err(Rejected::new(m, e))),
            Attempt::Wait(m, listener) => Err((m, Some(listener))),
        }
    }

    /// The rest of a send whose first attempt found the mailbox full
    /// (`listener`), or a broadcast.
    async fn deliver_after<W: Wait>(
        &self,
        message: Message,
        listener: Option<EventListener>,
        wait: &mut W,
    ) -> Result<(), Rejected<Message>> {
        match (message.recipient, listener) {
            (Recipient::Agent(to), Some(listener)) => {
                if !wait.wait(listener).await {
                    return self.last_try(to, message, wait.patience());
                }
                self.send_loop(to, message, wait).await
            }
            _ => self.deliver(message, wait).await,
        }
    }

    /// Sends to the recipient, or to every other agent for a broadcast.
    async fn deliver<W: Wait>(
        &self,
        message: Message,
        wait: &mut W,
    ) -> Result<(), Rejected<Message>> {
        match message.recipient {
            Recipient::Agent(to) => self.send_loop(to, message, wait).await,
            Recipient::Broadcast => match self.broadcast_with(message.clone(), wait).await {
                Ok(report) if report.missed.is_empty() => Ok(()),
                Ok(_) => Err(Rejected::new(
                    message,
                    HiveError::Timeout {
                        what: "broadcast",
                        after: wait.patience(),
                    },
                )),
                Err(e) => Err(Rejected::new(message, e)),
            },
        }
    }

    /// The one retry loop: accept, or wait for room the way `wait` waits.
    pub(crate) async fn send_loop<W: Wait>(
        &self,
        to: AgentId,
        message: Message,
        wait: &mut W,
    ) -> Result<(), Rejected<Message>> {
        let mut message = message;
        loop {
            match self.attempt(to, message) {
                Attempt::Sent => return Ok(()),
                Attempt::Refused(m, e) => return Err(Rejected::new(m, e)),
                Attempt::Wait(m, listener) => {
                    if wait.wait(listener).await {
                        message = m;
                        continue;
                    }
                    return self.last_try(to, m, wait.patience());
                }
            }
        }
    }

    /// Out of patience: one more try without waiting.
    pub(crate) fn last_try(
        &self,
        to: AgentId,
        message: Message,
        patience: Duration,
    ) -> Result<(), Rejected<Message>> {
        let mut state = lock(&self.core.state);
        self.accept(&mut state, to, message)
            .map_err(|(m, refusal)| {
                let e = match refusal {
                    Refusal::Full(_) => HiveError::Timeout {
                        what: "send",
                        after: patience,
                    },
                    other => other.into_error(),
                };
                Rejected::new(m, e)
            })
    }

    /// Sends `message` to the mailbox registered as `to`, whatever its
    /// recipient field says (a link fanning out a received broadcast).
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) async fn send_to_async(
        &self,
        to: AgentId,
        message: Message,
    ) -> Result<(), Rejected<Message>> {
        self.send_loop(to, message, &mut Await).await
    }

    /// Sends without waiting: a full mailbox hands the message back with
    /// [`HiveError::Full`].
    pub fn try_send(&self, message: Message) -> Result<(), Rejected<Message>> {
        let Recipient::Agent(to) = message.recipient else {
            let e = HiveError::NeedsOneRecipient { what: "try_send" };
            return Err(Rejected::new(message, e));
        };
        let mut state = lock(&self.core.state);
        self.accept(&mut state, to, message)
            .map_err(|(m, r)| Rejected::new(m, r.into_error()))
    }

    /// Hands every batch this sender holds to its mailbox now.
    pub fn flush(&self) {
        self.core.flush_all(&self.shared, FlushReason::Explicit);
    }

    /// Hands the batch held for `to`, if any, to its mailbox now.
    pub(crate) fn flush_to(&self, to: AgentId) {
        flush_route(
            &self.shared,
            &mut lock(&self.core.state),
            to,
            FlushReason::Request,
        );
    }

    /// Accepts `message` for `to`, or explains why not; a full mailbox
    /// yields a listener to wait on (registered before the last check).
    pub(crate) fn attempt(&self, to: AgentId, message: Message) -> Attempt {
        let mut state = lock(&self.core.state);
        match self.accept(&mut state, to, message) {
            Ok(()) => Attempt::Sent,
            Err((m, Refusal::Full(inbox))) => {
                // Our own batch for this mailbox holds some of its room.
                flush_route(&self.shared, &mut state, to, FlushReason::Backpressure);
                let (mut message, mut inbox) = (m, inbox);
                loop {
                    let listener = inbox.not_full.listen();
                    match self.accept(&mut state, to, message) {
                        Ok(()) => return Attempt::Sent,
                        Err((m, Refusal::Full(full))) if Arc::ptr_eq(&full, &inbox) => {
                            return Attempt::Wait(m, listener)
                        }
                        // The agent moved to another mailbox (the one we
                        // listen on closed): listen where it is full now.
                        Err((m, Refusal::Full(full))) => (message, inbox) = (m, full),
                        Err((m, refusal)) => return Attempt::Refused(m, refusal.into_error()),
                    }
                }
            }
            Err((m, refusal)) => Attempt::Refused(m, refusal.into_error()),
        }
    }

    /// The hot path: hand a reply to its waiter, or reserve room, append to
    /// the destination's batch, and flush if a rule says so.
    #[inline]
    pub(crate) fn accept(
        &self,
        state: &mut SenderState,
        to: AgentId,
        message: Message,
    ) -> Result<(), (Message, Refusal)> {
        if self.shared.is_closed() {
            return Err((message, Refusal::Closed));
        }
        let Some(message) = self.offer_reply(state, message) else {
            return Ok(());
        };
        let SenderState { routes, counts } = state;
        let route = match routes.entry(to) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match self.shared.registry.route(&to) {
                Some(inbox) => e.insert(Route { inbox, batch: None }),
                None => return Err((message, Refusal::Unknown(to))),
            },
        };
        match route.inbox.try_reserve(message.accounted_len()) {
            Ok(()) => {}
            Err(NoRoom::Full) => return Err((message, Refusal::Full(route.inbox.clone()))),
            Err(NoRoom::Closed) => return self.reroute(state, to, message),
        }
        let urgent = match (message.priority, message.kind) {
            (Priority::Critical, _) => Some(FlushReason::Priority),
            (_, MessageKind::Request | MessageKind::Response) => Some(FlushReason::Request),
            _ => None,
        };
        let batch = match &mut route.batch {
            Some(batch) => batch,
            None => {
                // A message that leaves at once goes alone, without arming
                // the linger timer.
                let alone =
                    urgent.or_else(|| self.flush_rule(&route.inbox, 1, message.accounted_len()));
                if let Some(reason) = alone {
                    let mut batch = Batch::new(self.shared.recycler.take(), Instant::now());
                    batch.push(message);
                    counts.sent += 1;
                    hand_over(&self.shared, &route.inbox, batch, reason, counts);
                    return Ok(());
                }
                route.batch.insert(self.start_batch(&route.inbox))
            }
        };
        batch.push(message);
        counts.sent += 1;
        let (len, bytes) = (batch.len(), batch.bytes);
        if let Some(reason) = urgent.or_else(|| self.flush_rule(&route.inbox, len, bytes)) {
            flush(&self.shared, route, reason, counts);
        }
        Ok(())
    }

    /// A reply goes straight to its waiter (or is counted late); anything
    /// else comes back to be sent.
    #[inline]
    fn offer_reply(&self, state: &mut SenderState, message: Message) -> Option<Message> {
        if !self.shared.requests.may_want(&message) {
            return Some(message);
        }
        match self.shared.requests.offer(message) {
            Offered::NotAReply(m) => Some(m),
            Offered::Delivered => {
                state.counts.sent += 1;
                self.shared.count_reply();
                None
            }
            Offered::Late(m) => {
                state.counts.sent += 1;
                self.shared.undeliverable([m], UndeliveredReason::LateReply);
                None
            }
        }
    }

    /// The cached route's mailbox closed: forget it, and if the agent is
    /// reachable another way now, send that way.
    #[cold]
    fn reroute(
        &self,
        state: &mut SenderState,
        to: AgentId,
        message: Message,
    ) -> Result<(), (Message, Refusal)> {
        let stale = state.routes.remove(&to);
        let rerouted = self.shared.registry.route(&to).filter(|inbox| {
            !inbox.is_closed()
                && stale
                    .as_ref()
                    .is_none_or(|old| !Arc::ptr_eq(&old.inbox, inbox))
        });
        if let Some(old) = stale {
            drop_route(&self.shared, old);
        }
        if rerouted.is_some() {
            return self.accept(state, to, message);
        }
        Err((message, Refusal::Unknown(to)))
    }

    /// Whether a batch of `len` messages and `bytes` for `inbox` must leave
    /// now, and why: full by count or bytes, or its consumer is idle.
    #[inline]
    fn flush_rule(&self, inbox: &Inbox, len: usize, bytes: usize) -> Option<FlushReason> {
        let config = &self.shared.config;
        if len >= config.max_messages || len >= inbox.capacity {
            Some(FlushReason::Size)
        } else if bytes >= config.max_bytes {
            Some(FlushReason::Bytes)
        } else if inbox.claim_idle() {
            Some(FlushReason::Idle)
        } else {
            None
        }
    }

    /// Opens a batch: recycled buffer, linger timer armed now.
    fn start_batch(&self, inbox: &Inbox) -> Batch {
        let started = Instant::now();
        inbox.batch_opened();
        let due = self
            .shared
            .nanos(started)
            .saturating_add(self.shared.linger_ns);
        if due < self.core.next_deadline.fetch_min(due, Ordering::SeqCst) {
            self.shared.flusher.schedule(due);
        }
        Batch::new(self.shared.recycler.take(), started)
    }
}

/// Flushes `route`'s open batch, if any, for `reason`.
fn flush(shared: &Shared, route: &mut Route, reason: FlushReason, counts: &mut SendCounts) {
    let Some(batch) = route.batch.take() else {
        return;
    };
    route.inbox.batch_closed();
    hand_over(shared, &route.inbox, batch, reason, counts);
}

/// Queues `batch` in `inbox`, counting the flush and why.
fn hand_over(
    shared: &Shared,
    inbox: &Inbox,
    batch: Batch,
    reason: FlushReason,
    counts: &mut SendCounts,
) {
    if let Some(n) = counts.flushes.get_mut(reason.index()) {
        *n += 1;
    }
    shared.recorders.flushed(reason, batch.len());
    if let Err(batch) = inbox.push(batch) {
        shared.refused(batch);
    }
}

fn flush_route(shared: &Shared, state: &mut SenderState, to: AgentId, reason: FlushReason) {
    let SenderState { routes, counts } = state;
    if let Some(route) = routes.get_mut(&to) {
        flush(shared, route, reason, counts);
    }
}

/// A route whose mailbox closed: what it held cannot be delivered.
fn drop_route(shared: &Shared, route: Route) {
    if let Some(batch) = route.batch {
        route.inbox.batch_closed();
        route.inbox.release(batch.len(), batch.bytes);
        shared.refused(batch);
    }
}

impl HeldBatches for SenderCore {
    fn next_deadline(&self) -> u64 {
        self.next_deadline.load(Ordering::SeqCst)
    }

    fn flush_all(&self, shared: &Shared, reason: FlushReason) {
        let mut state = lock(&self.state);
        let SenderState { routes, counts } = &mut *state;
        for route in routes.values_mut() {
            flush(shared, route, reason, counts);
        }
        self.next_deadline.store(NEVER, Ordering::SeqCst);
    }

    /// The flusher's visit; it also forgets closed mailboxes.
    fn flush_due(&self, shared: &Shared, now: u64, idle_poke: bool) -> u64 {
        let mut state = lock(&self.state);
        let SenderState { routes, counts } = &mut *state;
        let mut next = NEVER;
        routes.retain(|_, route| {
            if route.inbox.is_closed() && route.batch.is_none() {
                return false;
            }
            if let Some(batch) = &route.batch {
                let due = shared.nanos(batch.started).saturating_add(shared.linger_ns);
                if due <= now {
                    flush(shared, route, FlushReason::Age, counts);
                } else if idle_poke && route.inbox.is_waiting() {
                    flush(shared, route, FlushReason::Idle, counts);
                } else {
                    next = next.min(due);
                }
            }
            true
        });
        self.next_deadline.store(next, Ordering::SeqCst);
        next
    }

    fn counts(&self) -> SendCounts {
        lock(&self.state).counts
    }
}

impl Clone for Sender {
    /// A new handle with its own batches (order holds per handle).
    fn clone(&self) -> Self {
        Sender::new(self.shared.clone())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.core.flush_all(&self.shared, FlushReason::Close);
        let counts = std::mem::take(&mut lock(&self.core.state).counts);
        lock(&self.shared.retired).add(&counts);
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.core.state);
        f.debug_struct("Sender")
            .field("routes", &state.routes.len())
            .field("sent", &state.counts.sent)
            .finish()
    }
}
