//! Requests waiting for their replies, by request id.
//!
//! A sender that asks registers the request's id (and its deadline) here
//! before sending it. A reply is a `Response` (or `Error`) message whose
//! correlation id names a waiting request: whichever sender carries it (a
//! local agent's, or a transport delivering it from another process) hands
//! it straight to the waiter instead of a mailbox. The communicator's timer
//! thread (the flusher) times out requests whose deadline passed, so async
//! callers need no timer of their own runtime.
//!
//! When a waiter gives up (its deadline passed or its future was dropped),
//! its entry stays as a tombstone for a while, so a reply arriving late is
//! recognised, counted and dropped rather than delivered to a mailbox that
//! no longer expects it.
//!
//! The table is bounded: at most `max_pending_requests` entries, waiting
//! ones and tombstones together. Tombstones make room first (oldest
//! first); when every entry is a waiting request, asking again is refused
//! with `Full`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use event_listener::{Event, Listener};
use hive_types::{HiveError, HiveResult, Message, MessageId, MessageKind};

use crate::idmap::IdHasher;
use hive_types::sync::lock;

type RequestMap<V> = HashMap<MessageId, V, BuildHasherDefault<IdHasher>>;

/// How a request ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Reply(Message),
    TimedOut,
}

#[derive(Debug, Default)]
struct SlotState {
    outcome: Option<Outcome>,
    /// An async waiter to wake.
    waker: Option<Waker>,
    /// A blocking waiter listens on the event (async callers never touch
    /// it, so it costs them nothing).
    blocking: bool,
}

/// Where a reply lands: async waiters leave a waker, blocking ones listen.
#[derive(Debug, Default)]
pub(crate) struct ReplySlot {
    state: Mutex<SlotState>,
    event: Event,
}

impl ReplySlot {
    fn settle(&self, outcome: Outcome) {
        let (waker, blocking) = {
            let mut state = lock(&self.state);
            state.outcome = Some(outcome);
            (state.waker.take(), state.blocking)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if blocking {
            self.event.notify(usize::MAX);
        }
    }

    fn take(&self) -> Option<Outcome> {
        lock(&self.state).outcome.take()
    }

    /// Blocks until the outcome or `deadline`.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<Outcome> {
        loop {
            if let Some(outcome) = self.take() {
                return Some(outcome);
            }
            // Listen, then say so under the lock: `settle` either comes
            // after and notifies, or came before and the look sees it.
            let listener = self.event.listen();
            {
                let mut state = lock(&self.state);
                if let Some(outcome) = state.outcome.take() {
                    return Some(outcome);
                }
                state.blocking = true;
            }
            if listener.wait_deadline(deadline).is_none() {
                return self.take();
            }
        }
    }

    /// Awaits the outcome.
    pub(crate) async fn wait(&self) -> Outcome {
        std::future::poll_fn(|cx| {
            let mut state = lock(&self.state);
            match state.outcome.take() {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

enum Pending {
    Waiting { slot: Arc<ReplySlot>, deadline: u64 },
    GaveUp,
}

struct Table {
    entries: RequestMap<Pending>,
    /// Waiting requests by deadline (nanoseconds on the communicator's clock).
    deadlines: BTreeSet<(u64, MessageId)>,
    /// Ids of tombstones, oldest first (some may have been removed since).
    tombstones: VecDeque<MessageId>,
    waiting: usize,
}

impl Table {
    /// Turns a waiting entry into a tombstone.
    fn bury(&mut self, id: MessageId, deadline: u64) {
        if let Some(entry) = self.entries.get_mut(&id) {
            *entry = Pending::GaveUp;
            self.waiting -= 1;
            self.deadlines.remove(&(deadline, id));
            self.tombstones.push_back(id);
        }
    }
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
                deadlines: BTreeSet::new(),
                tombstones: VecDeque::new(),
                waiting: 0,
            }),
            max_entries,
        }
    }

    /// Registers request `id`, due at `deadline` (nanoseconds on the
    /// communicator's clock); its reply will land in the returned slot.
    pub(crate) fn register(&self, id: MessageId, deadline: u64) -> HiveResult<Arc<ReplySlot>> {
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
            Entry::Occupied(_) => {
                return Err(HiveError::AlreadySet {
                    what: "a waiter for this request id (build a new message for each request)",
                })
            }
            Entry::Vacant(v) => {
                v.insert(Pending::Waiting {
                    slot: slot.clone(),
                    deadline,
                });
            }
        }
        table.deadlines.insert((deadline, id));
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
            Some(Pending::Waiting { slot, deadline }) => {
                table.waiting -= 1;
                table.deadlines.remove(&(deadline, id));
                self.entries.store(table.entries.len(), Ordering::Release);
                drop(table);
                slot.settle(Outcome::Reply(message));
                return Offered::Delivered;
            }
            Some(Pending::GaveUp) => Offered::Late(message),
            None => Offered::NotAReply(message),
        };
        self.entries.store(table.entries.len(), Ordering::Release);
        outcome
    }

    /// The waiter of `id` gives up (its future was dropped, or its own
    /// deadline passed first): its entry becomes a tombstone. A reply that
    /// arrived meanwhile, unread, is returned (it came too late).
    pub(crate) fn give_up(&self, id: MessageId, slot: &Arc<ReplySlot>) -> Option<Message> {
        {
            let mut table = lock(&self.table);
            let ours = match table.entries.get(&id) {
                Some(Pending::Waiting { slot: s, deadline }) if Arc::ptr_eq(s, slot) => {
                    Some(*deadline)
                }
                _ => None,
            };
            if let Some(deadline) = ours {
                table.bury(id, deadline);
            }
        }
        match slot.take() {
            Some(Outcome::Reply(late)) => Some(late),
            _ => None,
        }
    }

    /// Times out every request due by `now`; returns the next deadline
    /// (`u64::MAX` when none).
    pub(crate) fn expire(&self, now: u64) -> u64 {
        if self.entries.load(Ordering::Acquire) == 0 {
            return u64::MAX;
        }
        let mut expired = Vec::new();
        let next = {
            let mut table = lock(&self.table);
            while let Some(&(deadline, id)) = table.deadlines.first() {
                if deadline > now {
                    break;
                }
                if let Some(Pending::Waiting { slot, .. }) = table.entries.get(&id) {
                    expired.push(slot.clone());
                }
                table.bury(id, deadline);
            }
            table
                .deadlines
                .first()
                .map_or(u64::MAX, |(deadline, _)| *deadline)
        };
        for slot in expired {
            slot.settle(Outcome::TimedOut);
        }
        next
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

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    #[test]
    fn a_reply_reaches_its_waiter_and_a_late_one_is_recognised() {
        let requests = Requests::new(4);
        let (a, b) = (AgentId::random(), AgentId::random());
        let ask = Message::request(a, b, "q");
        let slot = requests.register(ask.id, u64::MAX).unwrap();
        assert!(matches!(
            requests.offer(ask.reply(b, "a")),
            Offered::Delivered
        ));
        assert!(matches!(slot.take(), Some(Outcome::Reply(m)) if m.payload.as_ref() == b"a"));

        let late = Message::request(a, b, "q2");
        let slot = requests.register(late.id, u64::MAX).unwrap();
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
        let slot = requests.register(first.id, u64::MAX).unwrap();
        requests.give_up(first.id, &slot);
        let _s2 = requests
            .register(Message::request(a, b, "2").id, u64::MAX)
            .unwrap();
        let _s3 = requests
            .register(Message::request(a, b, "3").id, u64::MAX)
            .unwrap();
        assert_eq!(requests.waiting(), 2, "the tombstone made room");
        let refused = requests.register(Message::request(a, b, "4").id, u64::MAX);
        assert!(refused.unwrap_err().is_full());
    }

    #[test]
    fn expiry_times_out_due_requests_and_keeps_the_rest() {
        let requests = Requests::new(8);
        let (a, b) = (AgentId::random(), AgentId::random());
        let soon = Message::request(a, b, "soon");
        let later = Message::request(a, b, "later");
        let s1 = requests.register(soon.id, 100).unwrap();
        let s2 = requests.register(later.id, 500).unwrap();
        assert_eq!(requests.expire(99), 100, "nothing due yet");
        assert_eq!(requests.expire(100), 500);
        assert!(matches!(s1.take(), Some(Outcome::TimedOut)));
        assert!(s2.take().is_none());
        assert!(matches!(
            requests.offer(soon.reply(b, "x")),
            Offered::Late(_)
        ));
        assert!(matches!(
            requests.offer(later.reply(b, "y")),
            Offered::Delivered
        ));
        assert_eq!(requests.expire(1_000), u64::MAX);
    }
}
