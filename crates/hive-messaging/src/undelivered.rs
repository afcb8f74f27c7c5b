//! Messages that did not reach their recipient, with the reason, kept in a
//! store bounded in messages and in bytes.
//!
//! Every message a communicator accepted ends delivered or here: counted by
//! reason in [`CommunicatorStats`](crate::CommunicatorStats), and kept for
//! [`Communicator::take_undelivered`](crate::Communicator::take_undelivered)
//! while the store has room. When it is full the oldest kept message is
//! evicted, and that eviction is counted too.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use hive_types::Message;

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UndeliveredReason {
    /// Its recipient was not registered, or went away (unregistered, its
    /// mailbox dropped or closed) before taking it.
    NoRecipient,
    /// Its time to live ran out before its recipient took it.
    Expired,
    /// Its recipient was stopped and the mail it had not taken was cancelled.
    Cancelled,
    /// The communicator (or the system around it) shut down before the
    /// recipient took it.
    Shutdown,
    /// A transport knows it never left this process (its link or
    /// connection ended first, or it could not be encoded or sent).
    NotSent,
    /// A transport sent it but the peer never acknowledged it (the peer or
    /// the connection died): it may or may not have arrived. Resending is
    /// safe, receivers drop duplicates by message id.
    Unknown,
    /// The receiving process refused it (it hosts no such agent, or a limit
    /// of that process was exceeded).
    Refused,
    /// A reply that arrived after its request had given up waiting.
    LateReply,
}

impl UndeliveredReason {
    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [UndeliveredReason; 8] = [
        UndeliveredReason::NoRecipient,
        UndeliveredReason::Expired,
        UndeliveredReason::Cancelled,
        UndeliveredReason::Shutdown,
        UndeliveredReason::NotSent,
        UndeliveredReason::Unknown,
        UndeliveredReason::Refused,
        UndeliveredReason::LateReply,
    ];

    /// Position in [`UndeliveredReason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, used as the `reason` metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            UndeliveredReason::NoRecipient => "no_recipient",
            UndeliveredReason::Expired => "expired",
            UndeliveredReason::Cancelled => "cancelled",
            UndeliveredReason::Shutdown => "shutdown",
            UndeliveredReason::NotSent => "not_sent",
            UndeliveredReason::Unknown => "unknown",
            UndeliveredReason::Refused => "refused",
            UndeliveredReason::LateReply => "late_reply",
        }
    }

    /// Whether the message may have reached its recipient after all (only
    /// [`Unknown`](Self::Unknown)): resend it only if duplicates are harmless
    /// or dropped by id, as hive's receivers do.
    pub const fn may_have_arrived(self) -> bool {
        matches!(self, UndeliveredReason::Unknown)
    }
}

impl fmt::Display for UndeliveredReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message that was not delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// The message, with its original id (resending it keeps the id, so a
    /// receiver that already has it drops the copy).
    pub message: Message,
    /// Why it was not delivered.
    pub reason: UndeliveredReason,
}

/// Counts per reason.
pub(crate) type ReasonCounts = [u64; UndeliveredReason::ALL.len()];

/// The store: oldest first, bounded in messages and in payload bytes.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    kept: VecDeque<Undelivered>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    pub(crate) counts: ReasonCounts,
    pub(crate) evicted: u64,
}

impl DeadLetters {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        DeadLetters {
            kept: VecDeque::new(),
            bytes: 0,
            max_messages,
            max_bytes,
            counts: [0; UndeliveredReason::ALL.len()],
            evicted: 0,
        }
    }

    /// Counts `message` and keeps it, evicting the oldest kept ones while
    /// either bound would be exceeded. The payload is copied, so a message
    /// sliced out of a large received frame does not keep that frame alive.
    pub(crate) fn add(&mut self, mut message: Message, reason: UndeliveredReason) {
        if let Some(n) = self.counts.get_mut(reason.index()) {
            *n += 1;
        }
        let size = message.payload.len();
        if self.max_messages == 0 || size > self.max_bytes {
            self.evicted += 1;
            return;
        }
        while self.kept.len() >= self.max_messages || self.bytes + size > self.max_bytes {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            self.bytes -= old.message.payload.len();
            self.evicted += 1;
        }
        message.payload = Bytes::copy_from_slice(&message.payload);
        self.bytes += size;
        self.kept.push_back(Undelivered { message, reason });
    }

    /// Counts `n` messages that cannot be kept (their handler had them).
    pub(crate) fn count_only(&mut self, reason: UndeliveredReason, n: u64) {
        if let Some(c) = self.counts.get_mut(reason.index()) {
            *c += n;
        }
    }

    pub(crate) fn take(&mut self) -> Vec<Undelivered> {
        self.bytes = 0;
        self.kept.drain(..).collect()
    }

    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    fn message(len: usize) -> Message {
        Message::new(AgentId::nil(), AgentId::nil(), vec![7u8; len])
    }

    #[test]
    fn bounded_in_messages_and_bytes_and_every_eviction_counted() {
        let mut store = DeadLetters::new(3, 100);
        for _ in 0..5 {
            store.add(message(10), UndeliveredReason::Expired);
        }
        assert_eq!((store.kept.len(), store.evicted), (3, 2));
        store.add(message(90), UndeliveredReason::NotSent);
        assert_eq!(store.kept.len(), 2, "two 10-byte messages made room");
        assert_eq!(store.bytes, 100);
        store.add(message(101), UndeliveredReason::NotSent);
        assert_eq!(store.evicted, 5, "too large to keep: counted only");
        assert_eq!(store.total(), 7);
        let kept = store.take();
        assert_eq!(kept.last().unwrap().reason, UndeliveredReason::NotSent);
        assert_eq!(store.bytes, 0);
    }

    #[test]
    fn kept_payloads_do_not_share_the_senders_buffer() {
        let frame = Bytes::from(vec![1u8; 1 << 16]);
        let mut m = message(0);
        m.payload = frame.slice(0..4);
        let mut store = DeadLetters::new(8, 1 << 20);
        store.add(m, UndeliveredReason::Unknown);
        drop(frame);
        let kept = store.take();
        assert_eq!(kept[0].message.payload.as_ref(), &[1, 1, 1, 1]);
        assert!(kept[0].reason.may_have_arrived());
    }
}
