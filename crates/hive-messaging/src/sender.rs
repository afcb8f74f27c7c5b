//! [`Sender`]: batches messages per destination and hands them to mailboxes.

use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};
use hive_types::{AgentId, HiveError, HiveResult, Message, Priority, Recipient, Rejected};

use crate::batch::{Batch, FlushReason};
use crate::idmap::IdMap;
use crate::inbox::{Inbox, NoRoom};
use crate::shared::{lock, Shared, NEVER};
use crate::stats::SendCounts;

/// A handle that sends messages. Cheap to clone; each clone batches on its
/// own, so order is kept per (sender handle, recipient).
///
/// Made by [`Communicator::sender`](crate::Communicator::sender). Dropping it
/// flushes what it still holds.
pub struct Sender {
    core: Arc<SenderCore>,
    shared: Arc<Shared>,
}

pub(crate) struct SenderCore {
    state: Mutex<SenderState>,
    /// Earliest time one of this sender's batches is due (NEVER if none).
    pub(crate) next_deadline: AtomicU64,
}

#[derive(Default)]
struct SenderState {
    links: IdMap<Link>,
    counts: SendCounts,
}

/// This sender's path to one destination: its mailbox and open batch.
struct Link {
    inbox: Arc<Inbox>,
    batch: Option<Batch>,
}

/// Why a message was not accepted.
enum Refusal {
    Full(Arc<Inbox>),
    Unknown(AgentId),
    Closed,
}

impl Refusal {
    fn into_error(self) -> HiveError {
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

enum Attempt {
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
        lock(&shared.senders).push(Arc::downgrade(&core));
        Sender { core, shared }
    }

    /// Sends `message`, waiting while the recipient's mailbox is full. A
    /// [`Recipient::Broadcast`] message goes to every other registered agent.
    ///
    /// Refuses (and hands back) the message when the recipient is not
    /// registered or the communicator is closed.
    pub fn send(&self, message: Message) -> Result<(), Rejected<Message>> {
        self.send_until(message, None)
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room.
    pub fn send_timeout(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<(), Rejected<Message>> {
        self.send_until(message, Some((Instant::now() + timeout, timeout)))
    }

    fn send_until(
        &self,
        message: Message,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<(), Rejected<Message>> {
        let to = match message.recipient {
            Recipient::Agent(to) => to,
            Recipient::Broadcast => {
                return match self.broadcast(message.clone()) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(Rejected::new(message, e)),
                };
            }
        };
        let mut message = message;
        loop {
            match self.attempt(to, message) {
                Attempt::Sent => return Ok(()),
                Attempt::Refused(m, e) => return Err(Rejected::new(m, e)),
                Attempt::Wait(m, listener) => {
                    message = m;
                    let Some((deadline, timeout)) = deadline else {
                        listener.wait();
                        continue;
                    };
                    if listener.wait_deadline(deadline).is_some() {
                        continue;
                    }
                    // Out of time: one last try, without waiting.
                    let mut state = lock(&self.core.state);
                    return self
                        .accept(&mut state, to, message)
                        .map_err(|(m, refusal)| {
                            let e = match refusal {
                                Refusal::Full(_) => HiveError::Timeout {
                                    what: "send",
                                    after: timeout,
                                },
                                other => other.into_error(),
                            };
                            Rejected::new(m, e)
                        });
                }
            }
        }
    }

    /// Sends `message` from async code, awaiting room in a full mailbox.
    pub async fn send_async(&self, message: Message) -> Result<(), Rejected<Message>> {
        let to = match message.recipient {
            Recipient::Agent(to) => to,
            Recipient::Broadcast => {
                return match self.broadcast_async(message.clone()).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(Rejected::new(message, e)),
                };
            }
        };
        let mut message = message;
        loop {
            match self.attempt(to, message) {
                Attempt::Sent => return Ok(()),
                Attempt::Refused(m, e) => return Err(Rejected::new(m, e)),
                Attempt::Wait(m, listener) => {
                    message = m;
                    listener.await;
                }
            }
        }
    }

    /// Sends `message` to the mailbox registered as `to`, whatever its
    /// recipient field says (a link fanning out a received broadcast).
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) async fn send_to_async(
        &self,
        to: AgentId,
        message: Message,
    ) -> Result<(), Rejected<Message>> {
        let mut message = message;
        loop {
            match self.attempt(to, message) {
                Attempt::Sent => return Ok(()),
                Attempt::Refused(m, e) => return Err(Rejected::new(m, e)),
                Attempt::Wait(m, listener) => {
                    message = m;
                    listener.await;
                }
            }
        }
    }

    /// Sends without waiting: a full mailbox hands the message back with
    /// [`HiveError::Full`].
    pub fn try_send(&self, message: Message) -> Result<(), Rejected<Message>> {
        let Recipient::Agent(to) = message.recipient else {
            let e = HiveError::Config {
                field: "recipient",
                reason: "try_send goes to one agent; use broadcast for Recipient::Broadcast".into(),
            };
            return Err(Rejected::new(message, e));
        };
        let mut state = lock(&self.core.state);
        self.accept(&mut state, to, message)
            .map_err(|(m, r)| Rejected::new(m, r.into_error()))
    }

    /// Sends every message in order, taking this sender's lock once for each
    /// run of messages that fit; a message that does not fit waits as in
    /// [`send`](Self::send). Stops at the first refusal and hands that
    /// message back; the rest of the iterator is left unconsumed.
    pub fn send_many(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<usize, Rejected<Message>> {
        let mut sent = 0;
        let mut iter = messages.into_iter().peekable();
        while iter.peek().is_some() {
            let blocked = {
                let mut state = lock(&self.core.state);
                loop {
                    let Some(m) = iter.next() else { break None };
                    let Recipient::Agent(to) = m.recipient else {
                        break Some(m);
                    };
                    match self.accept(&mut state, to, m) {
                        Ok(()) => sent += 1,
                        Err((m, Refusal::Full(_))) => break Some(m),
                        Err((m, refusal)) => return Err(Rejected::new(m, refusal.into_error())),
                    }
                }
            };
            if let Some(m) = blocked {
                self.send(m)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends a copy of `message` to every registered agent except its
    /// sender, waiting for room where needed. Returns how many got it.
    pub fn broadcast(&self, message: Message) -> HiveResult<usize> {
        let mut reached = 0;
        // A link to another process gets one copy; the peer fans it out.
        for inbox in self.shared.inboxes() {
            if inbox.agent == message.sender {
                continue;
            }
            let mut copy = message.clone();
            loop {
                match self.attempt(inbox.agent, copy) {
                    Attempt::Sent => {
                        reached += 1;
                        break;
                    }
                    Attempt::Refused(_, HiveError::UnknownAgent(_)) => break,
                    Attempt::Refused(_, e) => return Err(e),
                    Attempt::Wait(m, listener) => {
                        copy = m;
                        listener.wait();
                    }
                }
            }
        }
        Ok(reached)
    }

    /// [`broadcast`](Self::broadcast) from async code.
    pub async fn broadcast_async(&self, message: Message) -> HiveResult<usize> {
        let mut reached = 0;
        for inbox in self.shared.inboxes() {
            if inbox.agent == message.sender {
                continue;
            }
            let mut copy = message.clone();
            loop {
                match self.attempt(inbox.agent, copy) {
                    Attempt::Sent => {
                        reached += 1;
                        break;
                    }
                    Attempt::Refused(_, HiveError::UnknownAgent(_)) => break,
                    Attempt::Refused(_, e) => return Err(e),
                    Attempt::Wait(m, listener) => {
                        copy = m;
                        listener.await;
                    }
                }
            }
        }
        Ok(reached)
    }

    /// Hands every batch this sender holds to its mailbox now.
    pub fn flush(&self) {
        self.core.flush_all(&self.shared, FlushReason::Explicit);
    }

    /// Accepts `message` for `to`, or explains why not; a full mailbox
    /// yields a listener to wait on (registered before the last check).
    fn attempt(&self, to: AgentId, message: Message) -> Attempt {
        let mut state = lock(&self.core.state);
        match self.accept(&mut state, to, message) {
            Ok(()) => Attempt::Sent,
            Err((m, Refusal::Full(inbox))) => {
                // Our own batch for this mailbox holds some of its room.
                flush_link(&self.shared, &mut state, to, FlushReason::Backpressure);
                let listener = inbox.not_full.listen();
                match self.accept(&mut state, to, m) {
                    Ok(()) => Attempt::Sent,
                    Err((m, Refusal::Full(_))) => Attempt::Wait(m, listener),
                    Err((m, refusal)) => Attempt::Refused(m, refusal.into_error()),
                }
            }
            Err((m, refusal)) => Attempt::Refused(m, refusal.into_error()),
        }
    }

    /// The hot path: reserve room, append to the destination's batch, flush
    /// if a rule says so.
    #[inline]
    fn accept(
        &self,
        state: &mut SenderState,
        to: AgentId,
        message: Message,
    ) -> Result<(), (Message, Refusal)> {
        if self.shared.is_closed() {
            return Err((message, Refusal::Closed));
        }
        let SenderState { links, counts } = state;
        let link = match links.entry(to) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match self.shared.route(&to) {
                Some(inbox) => e.insert(Link { inbox, batch: None }),
                None => return Err((message, Refusal::Unknown(to))),
            },
        };
        match link.inbox.try_reserve() {
            Ok(()) => {}
            Err(NoRoom::Full) => return Err((message, Refusal::Full(link.inbox.clone()))),
            Err(NoRoom::Closed) => {
                // The cached route went away: forget it; if the agent is
                // reachable another way now, use that route.
                let stale = links.remove(&to);
                let rerouted = self.shared.route(&to).filter(|inbox| {
                    !inbox.is_closed()
                        && stale
                            .as_ref()
                            .is_none_or(|old| !Arc::ptr_eq(&old.inbox, inbox))
                });
                if let Some(old) = stale {
                    drop_link(&self.shared, old);
                }
                if rerouted.is_some() {
                    return self.accept(state, to, message);
                }
                return Err((message, Refusal::Unknown(to)));
            }
        }
        let critical = message.priority == Priority::Critical;
        let batch = match &mut link.batch {
            Some(batch) => batch,
            None => link.batch.insert(self.start_batch(&link.inbox)),
        };
        batch.push(message);
        counts.sent += 1;
        let config = &self.shared.config;
        let reason = if critical {
            Some(FlushReason::Priority)
        } else if batch.len() >= config.max_messages || batch.len() >= link.inbox.capacity {
            Some(FlushReason::Size)
        } else if batch.bytes >= config.max_bytes {
            Some(FlushReason::Bytes)
        } else if link.inbox.claim_idle() {
            Some(FlushReason::Idle)
        } else {
            None
        };
        if let Some(reason) = reason {
            flush(&self.shared, link, reason, counts);
        }
        Ok(())
    }

    /// Opens a batch: recycled buffer, linger timer armed now.
    fn start_batch(&self, inbox: &Inbox) -> Batch {
        let started = Instant::now();
        inbox.partial_batches.fetch_add(1, Ordering::AcqRel);
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

/// Flushes `link`'s open batch, if any, for `reason`.
fn flush(shared: &Shared, link: &mut Link, reason: FlushReason, counts: &mut SendCounts) {
    let Some(batch) = link.batch.take() else {
        return;
    };
    link.inbox.partial_batches.fetch_sub(1, Ordering::AcqRel);
    if let Some(n) = counts.flushes.get_mut(reason.index()) {
        *n += 1;
    }
    shared.recorders.flushed(reason, batch.len());
    if let Err(batch) = link.inbox.push(batch) {
        shared.refused(batch);
    }
}

fn flush_link(shared: &Shared, state: &mut SenderState, to: AgentId, reason: FlushReason) {
    let SenderState { links, counts } = state;
    if let Some(link) = links.get_mut(&to) {
        flush(shared, link, reason, counts);
    }
}

/// A link whose mailbox closed: what it held cannot be delivered.
fn drop_link(shared: &Shared, link: Link) {
    if let Some(batch) = link.batch {
        link.inbox.partial_batches.fetch_sub(1, Ordering::AcqRel);
        link.inbox.release(batch.len());
        shared.refused(batch);
    }
}

impl SenderCore {
    /// Flushes every open batch.
    pub(crate) fn flush_all(&self, shared: &Shared, reason: FlushReason) {
        let mut state = lock(&self.state);
        let SenderState { links, counts } = &mut *state;
        for link in links.values_mut() {
            flush(shared, link, reason, counts);
        }
        self.next_deadline.store(NEVER, Ordering::SeqCst);
    }

    /// The flusher's visit: flushes batches that are due (or whose consumer
    /// waits, when `idle_poke`), forgets closed mailboxes, and returns the
    /// next deadline.
    pub(crate) fn flush_due(&self, shared: &Shared, now: u64, idle_poke: bool) -> u64 {
        let mut state = lock(&self.state);
        let SenderState { links, counts } = &mut *state;
        let mut next = NEVER;
        links.retain(|_, link| {
            if link.inbox.is_closed() && link.batch.is_none() {
                return false;
            }
            if let Some(batch) = &link.batch {
                let due = shared.nanos(batch.started).saturating_add(shared.linger_ns);
                if due <= now {
                    flush(shared, link, FlushReason::Age, counts);
                } else if idle_poke && link.inbox.is_waiting() {
                    flush(shared, link, FlushReason::Idle, counts);
                } else {
                    next = next.min(due);
                }
            }
            true
        });
        self.next_deadline.store(next, Ordering::SeqCst);
        next
    }

    pub(crate) fn counts(&self) -> SendCounts {
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
        let counts = self.core.counts();
        lock(&self.shared.retired).0.add(&counts);
        lock(&self.core.state).counts = SendCounts::default();
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.core.state);
        f.debug_struct("Sender")
            .field("links", &state.links.len())
            .field("sent", &state.counts.sent)
            .finish()
    }
}
