//! Communicator configuration.

use std::time::Duration;

use hive_types::{HiveError, HiveResult};

/// How a [`Communicator`](crate::Communicator) batches and bounds messages.
///
/// A batch to one destination is flushed when it holds `max_messages`
/// messages or `max_bytes` bytes, when its oldest message has waited
/// `linger`, when the destination is idle, when a `Critical` message joins
/// it, on `flush()`, and when its sender is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunicatorConfig {
    /// Messages per batch before it is flushed (the seed design: 50).
    pub max_messages: usize,
    /// Bytes per batch (payloads plus envelope estimate) before it is flushed.
    pub max_bytes: usize,
    /// Longest a message waits in a batch; the timer starts with a batch's
    /// first message and later messages never push it back (the seed design: 10 ms).
    pub linger: Duration,
    /// Messages a mailbox holds, counting those already accepted into
    /// senders' batches for it; senders wait (or get `Full`) beyond it.
    pub mailbox_capacity: usize,
    /// Bytes (payloads plus a 96-byte envelope estimate each) a mailbox
    /// holds, counted like `mailbox_capacity`; one message larger than this
    /// still fits an empty mailbox.
    pub mailbox_bytes: usize,
    /// Message ids a process remembers to drop duplicates that arrive
    /// from other processes (a sender resending what it could not confirm).
    pub dedup_window: usize,
    /// Undelivered messages kept for
    /// [`take_undelivered`](crate::Communicator::take_undelivered); beyond
    /// it (or beyond `dead_letter_bytes`) the oldest kept one is evicted.
    /// Every undelivered message is counted either way.
    pub dead_letter_capacity: usize,
    /// Payload bytes kept for `take_undelivered` (payloads are copied, so
    /// this is memory actually held).
    pub dead_letter_bytes: usize,
    /// Empty batch buffers kept for reuse by the default recycler.
    pub recycled_batches: usize,
    /// Requests waiting for a reply, plus recently abandoned ones (kept to
    /// recognise late replies); a request beyond it is refused with `Full`.
    pub max_pending_requests: usize,
    /// A `Low` or `Normal` message that waited longer than this in a
    /// mailbox gets every other turn ahead of more urgent mail (aging).
    pub aging_threshold: Duration,
}

impl Default for CommunicatorConfig {
    fn default() -> Self {
        CommunicatorConfig {
            max_messages: 50,
            max_bytes: 64 * 1024,
            linger: Duration::from_millis(10),
            mailbox_capacity: 4096,
            mailbox_bytes: 64 << 20,
            dedup_window: 65_536,
            dead_letter_capacity: 1024,
            dead_letter_bytes: 4 << 20,
            recycled_batches: 1024,
            max_pending_requests: 65_536,
            aging_threshold: Duration::from_millis(100),
        }
    }
}

impl CommunicatorConfig {
    /// Sets `max_messages`.
    pub fn max_messages(mut self, n: usize) -> Self {
        self.max_messages = n;
        self
    }

    /// Sets `max_bytes`.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets `linger`.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets `mailbox_capacity`.
    pub fn mailbox_capacity(mut self, n: usize) -> Self {
        self.mailbox_capacity = n;
        self
    }

    /// Sets `mailbox_bytes`.
    pub fn mailbox_bytes(mut self, n: usize) -> Self {
        self.mailbox_bytes = n;
        self
    }

    /// Sets `dedup_window`.
    pub fn dedup_window(mut self, n: usize) -> Self {
        self.dedup_window = n;
        self
    }

    /// Sets `dead_letter_capacity`.
    pub fn dead_letter_capacity(mut self, n: usize) -> Self {
        self.dead_letter_capacity = n;
        self
    }

    /// Sets `dead_letter_bytes`.
    pub fn dead_letter_bytes(mut self, n: usize) -> Self {
        self.dead_letter_bytes = n;
        self
    }

    /// Sets `max_pending_requests`.
    pub fn max_pending_requests(mut self, n: usize) -> Self {
        self.max_pending_requests = n;
        self
    }

    /// Sets `aging_threshold`.
    pub fn aging_threshold(mut self, threshold: Duration) -> Self {
        self.aging_threshold = threshold;
        self
    }

    /// Checks the values; the error names the field and the accepted range.
    pub fn validate(&self) -> HiveResult<()> {
        if self.max_messages == 0 {
            return Err(HiveError::config(
                "max_messages",
                "must be at least 1 (1 disables batching)",
            ));
        }
        if self.max_bytes == 0 {
            return Err(HiveError::config("max_bytes", "must be at least 1 byte"));
        }
        if self.mailbox_capacity == 0 {
            return Err(HiveError::config(
                "mailbox_capacity",
                "must be at least 1 message",
            ));
        }
        if self.mailbox_bytes == 0 {
            return Err(HiveError::config(
                "mailbox_bytes",
                "must be at least 1 byte (one large message always fits an empty mailbox)",
            ));
        }
        if self.max_pending_requests == 0 {
            return Err(HiveError::config(
                "max_pending_requests",
                "must be at least 1 request",
            ));
        }
        if self.linger > Duration::from_secs(3600) {
            return Err(HiveError::config(
                "linger",
                "must be at most one hour (10 ms is typical)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_designs() {
        let c = CommunicatorConfig::default();
        assert_eq!((c.max_messages, c.max_bytes), (50, 65536));
        assert_eq!(c.linger, Duration::from_millis(10));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn zero_bounds_are_rejected_with_the_field_name() {
        let err = CommunicatorConfig::default()
            .mailbox_capacity(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("mailbox_capacity"), "{err}");
        assert!(CommunicatorConfig::default()
            .max_messages(0)
            .validate()
            .is_err());
    }
}
