//! A batch of messages to one destination, and why batches are flushed.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use hive_types::{Message, Priority};

/// Messages travelling together to one destination, in send order.
///
/// In-process batches move as values (the `VecDeque` buffer is recycled),
/// never serialised.
pub(crate) struct Batch {
    pub(crate) messages: VecDeque<Message>,
    /// Payload plus envelope bytes of the messages.
    pub(crate) bytes: usize,
    /// When the first message joined: starts the linger timer.
    pub(crate) started: Instant,
    /// Highest priority inside.
    pub(crate) top_priority: Priority,
    /// Lowest priority inside (equal to `top_priority`: one lane).
    pub(crate) low_priority: Priority,
}

impl Batch {
    pub(crate) fn new(buffer: VecDeque<Message>, started: Instant) -> Self {
        Batch {
            messages: buffer,
            bytes: 0,
            started,
            top_priority: Priority::Low,
            low_priority: Priority::Critical,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, message: Message) {
        self.bytes += message.accounted_len();
        self.top_priority = self.top_priority.max(message.priority);
        self.low_priority = self.low_priority.min(message.priority);
        self.messages.push_back(message);
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("messages", &self.messages.len())
            .field("bytes", &self.bytes)
            .field("top_priority", &self.top_priority)
            .finish()
    }
}

/// Why a batch left its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushReason {
    /// It reached `max_messages` (or the mailbox's capacity).
    Size,
    /// It reached `max_bytes`.
    Bytes,
    /// Its oldest message waited `linger`.
    Age,
    /// The destination had nothing queued and was waiting.
    Idle,
    /// A `Critical` message joined it.
    Priority,
    /// `flush()` was called.
    Explicit,
    /// Its sender was dropped or the communicator closed.
    Close,
    /// The destination was full and the sender waited for room.
    Backpressure,
    /// A request or a reply joined it (never held back: someone waits).
    Request,
}

impl FlushReason {
    /// Every reason, in `index` order.
    pub const ALL: [FlushReason; 9] = [
        FlushReason::Size,
        FlushReason::Bytes,
        FlushReason::Age,
        FlushReason::Idle,
        FlushReason::Priority,
        FlushReason::Explicit,
        FlushReason::Close,
        FlushReason::Backpressure,
        FlushReason::Request,
    ];

    /// Position in [`FlushReason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, used as the `reason` metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Bytes => "bytes",
            FlushReason::Age => "age",
            FlushReason::Idle => "idle",
            FlushReason::Priority => "priority",
            FlushReason::Explicit => "explicit",
            FlushReason::Close => "close",
            FlushReason::Backpressure => "backpressure",
            FlushReason::Request => "request",
        }
    }
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    #[test]
    fn push_tracks_bytes_and_top_priority() {
        let mut b = Batch::new(VecDeque::new(), Instant::now());
        let m = Message::builder(AgentId::nil(), AgentId::nil())
            .payload("abc")
            .build();
        let urgent = Message::builder(AgentId::nil(), AgentId::nil())
            .priority(Priority::High)
            .build();
        b.push(m);
        b.push(urgent);
        assert_eq!(b.len(), 2);
        assert_eq!(b.bytes, 2 * hive_types::ENVELOPE_BYTES + 3);
        assert_eq!(b.top_priority, Priority::High);
    }

    #[test]
    fn reasons_index_their_position() {
        for (i, r) in FlushReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.as_str().is_empty());
        }
    }
}
