//! Requests waiting for their replies, by request id.
//!
//! A sender that asks registers the request's id here before sending it.
//! A reply is a `Response` (or `Error`) message whose correlation id names
//! a waiting request: whichever sender carries it (a local agent's, or a
//! transport delivering it from another process) hands it straight to the
//! waiter instead of a mailbox. When a waiter gives up (its deadline passed
//! or its future was dropped), its entry stays as a tombstone for a while,
//! so a reply arriving late is recognised, counted and dropped rather than
//! delivered to a mailbox that no longer expects it.
//!
//! The table is bounded: at most `max_pending_requests` entries, waiting
//! ones and tombstones together. Tombstones make room first (oldest
//! first); when every entry is a waiting request, asking again is refused
//! with `Full`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use hive_types::{AgentId, HiveError, HiveResult, Message, MessageId, MessageKind, Recipient};

use crate::idmap::IdHasher;
use crate::sender::Sender;
use crate::shared::{lock, Shared};
use crate::undelivered::UndeliveredReason;
use crate::wait::{run_blocking, Await, AwaitOr, BlockUntil};

type RequestMap<V> = HashMap<MessageId, V, BuildHasherDefault<IdHasher>>;

/// Where a reply lands.
#[derive(Debug, Default)]
pub(crate) struct ReplySlot {
    reply: Mutex<Option<Message>>,
    done: AtomicBool,
    event: Event,
}

impl ReplySlot {
    fn fill(&self, reply: Message) {
        *lock(&self.reply) = Some(reply);
        self.done.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn take(&self) -> Option<Message> {
        if !self.done.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.reply).take()
    }

    /// Blocks until the reply or `deadline`.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<Message> {
        loop {
            if let Some(reply) = self.take() {
                return Some(reply);
            }
            let listener = self.event.listen();
            if let Some(reply) = self.take() {
                return Some(reply);
            }
            if listener.wait_deadline(deadline).is_none() {
                return self.take();
            }
        }
    }

    /// Awaits the reply.
    pub(crate) async fn wait(&self) -> Message {
        loop {
            if let Some(reply) = self.take() {
                return reply;
            }
            let listener = self.event.listen();
            if let Some(reply) = self.take() {
                return reply;
            }
            listener.await;
        }
    }
}

enum Pending {
    Waiting(Arc<ReplySlot>),
    GaveUp,
}

struct Table {
    entries: RequestMap<Pending>,
    /// Ids of tombstones, oldest first (some may have been removed since).
    tombstones: VecDeque<MessageId>,
    waiting: usize,
}

/// What became of a message offered as a reply.
pub(crate) enum Offered {
    /// It was a reply and its waiter has it.
    Delivered,
    /// It answers a request whose waiter gave up.
    Late(Message),
    /// Not a reply anyone here waits for.
    NotAReply(Message),
}

pub(crate) struct Requests {
    /// Entries (waiting and tombstones): lets senders skip the lock.
    entries: AtomicUsize,
    table: Mutex<Table>,
    max_entries: usize,
}

impl Requests {
    pub(crate) fn new(max_entries: usize) -> Self {
        Requests {
            entries: AtomicUsize::new(0),
            table: Mutex::new(Table {
                entries: RequestMap::default(),
                tombstones: VecDeque::new(),
                waiting: 0,
            }),
            max_entries,
        }
    }

    /// Registers request `id`; its reply will land in the returned slot.
    pub(crate) fn register(&self, id: MessageId) -> HiveResult<Arc<ReplySlot>> {
        let mut table = lock(&self.table);
        if table.waiting >= self.max_entries {
            return Err(HiveError::Full {
                what: "pending requests",
                capacity: self.max_entries,
            });
        }
        while table.entries.len() >= self.max_entries {
            let Some(old) = table.tombstones.pop_front() else {
                break;
            };
            if matches!(table.entries.get(&old), Some(Pending::GaveUp)) {
                table.entries.remove(&old);
            }
        }
        let slot = Arc::new(ReplySlot::default());
        match table.entries.entry(id) {
            Entry::Occupied(_) => return Err(HiveError::config(
                "request id",
                "a request with this id is already waiting; build a new message for each request",
            )),
            Entry::Vacant(v) => {
                v.insert(Pending::Waiting(slot.clone()));
            }
        }
        table.waiting += 1;
        self.entries.store(table.entries.len(), Ordering::Release);
        Ok(slot)
    }

    /// Whether `message` may be a reply someone here waits for (a cheap
    /// look before [`offer`](Self::offer)).
    #[inline]
    pub(crate) fn may_want(&self, message: &Message) -> bool {
        message.correlation_id.is_some()
            && matches!(message.kind, MessageKind::Response | MessageKind::Error)
            && self.entries.load(Ordering::Acquire) > 0
    }

    /// Offers `message` as a reply: a `Response` or `Error` whose
    /// correlation id names a request registered here.
    pub(crate) fn offer(&self, message: Message) -> Offered {
        let Some(id) = message.correlation_id else {
            return Offered::NotAReply(message);
        };
        if !self.may_want(&message) {
            return Offered::NotAReply(message);
        }
        let mut table = lock(&self.table);
        let outcome = match table.entries.remove(&id) {
            Some(Pending::Waiting(slot)) => {
                table.waiting -= 1;
                slot.fill(message);
                Offered::Delivered
            }
            Some(Pending::GaveUp) => Offered::Late(message),
            None => Offered::NotAReply(message),
        };
        self.entries.store(table.entries.len(), Ordering::Release);
        outcome
    }

    /// The waiter of `id` gives up: its entry becomes a tombstone. A reply
    /// that arrived meanwhile, unread, is returned (it came too late).
    pub(crate) fn give_up(&self, id: MessageId, slot: &Arc<ReplySlot>) -> Option<Message> {
        let mut table = lock(&self.table);
        if let Some(entry) = table.entries.get_mut(&id) {
            if matches!(entry, Pending::Waiting(s) if Arc::ptr_eq(s, slot)) {
                *entry = Pending::GaveUp;
                table.waiting -= 1;
                table.tombstones.push_back(id);
            }
        }
        drop(table);
        slot.take()
    }

    /// Requests waiting for a reply now.
    pub(crate) fn waiting(&self) -> usize {
        lock(&self.table).waiting
    }
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("entries", &self.entries.load(Ordering::Relaxed))
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// A registered request: hands its reply over, or gives up on drop (a reply
/// arriving later is counted as late).
struct PendingReply<'a> {
    id: MessageId,
    slot: Arc<ReplySlot>,
    shared: &'a Shared,
}

impl<'a> PendingReply<'a> {
    fn register(shared: &'a Shared, request: &Message) -> HiveResult<Self> {
        let slot = shared.requests.register(request.id)?;
        Ok(PendingReply {
            id: request.id,
            slot,
            shared,
        })
    }
}

impl Drop for PendingReply<'_> {
    fn drop(&mut self) {
        if let Some(late) = self.shared.requests.give_up(self.id, &self.slot) {
            self.shared
                .undeliverable([late], UndeliveredReason::LateReply);
        }
    }
}

fn recipient(request: &Message) -> HiveResult<AgentId> {
    match request.recipient {
        Recipient::Agent(to) => Ok(to),
        Recipient::Broadcast => Err(HiveError::config(
            "recipient",
            "a request goes to one agent; a broadcast has no single reply",
        )),
    }
}

fn reply_timeout(after: Duration) -> HiveError {
    HiveError::Timeout {
        what: "reply",
        after,
    }
}

/// Request and reply: ask one agent and wait for its answer.
///
/// The reply is the first `Response` (or `Error`) message whose correlation
/// id is the request's id, as [`Message::reply`] builds it. It never enters
/// the asker's mailbox: whoever sends it hands it to the waiting call, in
/// this process or, through a transport, from another one. A reply that
/// comes after the call gave up is dropped and counted as
/// [`LateReply`](UndeliveredReason::LateReply). Requests and replies are
/// never held back for batching.
impl Sender {
    /// Sends `request` (build it with [`Message::request`]) and blocks until
    /// its reply, at most `timeout` in all (waiting for room included).
    pub fn request(&self, request: Message, timeout: Duration) -> HiveResult<Message> {
        let to = recipient(&request)?;
        let pending = PendingReply::register(&self.shared, &request)?;
        let mut wait = BlockUntil::new(timeout);
        run_blocking(self.send_loop(to, request, &mut wait))?;
        self.flush_to(to);
        pending
            .slot
            .wait_until(wait.deadline)
            .ok_or_else(|| reply_timeout(timeout))
    }

    /// [`request`](Self::request) from async code, without a deadline of
    /// its own: wrap it in your runtime's timeout, or use
    /// [`request_async_timeout`](Self::request_async_timeout). Dropping the
    /// future gives up waiting.
    pub async fn request_async(&self, request: Message) -> HiveResult<Message> {
        let to = recipient(&request)?;
        let pending = PendingReply::register(&self.shared, &request)?;
        self.send_loop(to, request, &mut Await).await?;
        self.flush_to(to);
        Ok(pending.slot.wait().await)
    }

    /// [`request`](Self::request) from async code, giving up when `give_up`
    /// (your runtime's timer for `timeout`) completes.
    pub async fn request_async_timeout(
        &self,
        request: Message,
        timeout: Duration,
        give_up: impl Future<Output = ()> + Send,
    ) -> HiveResult<Message> {
        let to = recipient(&request)?;
        let pending = PendingReply::register(&self.shared, &request)?;
        let mut wait = AwaitOr::new(give_up, timeout);
        self.send_loop(to, request, &mut wait).await?;
        self.flush_to(to);
        wait.or_give_up(pending.slot.wait())
            .await
            .ok_or_else(|| reply_timeout(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    #[test]
    fn a_reply_reaches_its_waiter_and_a_late_one_is_recognised() {
        let requests = Requests::new(4);
        let (a, b) = (AgentId::random(), AgentId::random());
        let ask = Message::request(a, b, "q");
        let slot = requests.register(ask.id).unwrap();
        assert!(matches!(
            requests.offer(ask.reply(b, "a")),
            Offered::Delivered
        ));
        assert_eq!(slot.take().unwrap().payload.as_ref(), b"a");

        let late = Message::request(a, b, "q2");
        let slot = requests.register(late.id).unwrap();
        assert!(requests.give_up(late.id, &slot).is_none());
        assert!(matches!(
            requests.offer(late.reply(b, "x")),
            Offered::Late(_)
        ));
        let stranger = Message::request(a, b, "q3").reply(b, "y");
        assert!(matches!(requests.offer(stranger), Offered::NotAReply(_)));
    }

    #[test]
    fn bounded_tombstones_make_room_waiters_do_not() {
        let requests = Requests::new(2);
        let (a, b) = (AgentId::random(), AgentId::random());
        let first = Message::request(a, b, "1");
        let slot = requests.register(first.id).unwrap();
        requests.give_up(first.id, &slot);
        let _s2 = requests.register(Message::request(a, b, "2").id).unwrap();
        let _s3 = requests.register(Message::request(a, b, "3").id).unwrap();
        assert_eq!(requests.waiting(), 2, "the tombstone made room");
        let refused = requests.register(Message::request(a, b, "4").id);
        assert!(refused.unwrap_err().is_full());
    }
}
