//! One error type for every hive crate, and [`Rejected`] to give back a
//! value that could not be accepted.

use std::fmt;
use std::time::Duration;

use crate::AgentId;

/// Result alias used across hive.
pub type HiveResult<T> = Result<T, HiveError>;

/// What went wrong. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HiveError {
    /// A bounded queue had no room (backpressure).
    #[error("{what} is full (capacity {capacity}): retry later, use the waiting variant, or raise the capacity")]
    Full {
        /// Which queue.
        what: &'static str,
        /// Its configured capacity.
        capacity: usize,
    },

    /// The component was closed or shut down.
    #[error("{what} is closed: it accepts nothing more; create a new one or stop sending")]
    Closed {
        /// Which component.
        what: &'static str,
    },

    /// A wait ran out of time.
    #[error("{what} timed out after {after:?}: retry, wait longer, or reduce the load")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },

    /// No agent with this id is registered.
    #[error("agent {0} is not registered: register it first, or check the id")]
    UnknownAgent(AgentId),

    /// An agent with this id is already registered.
    #[error("agent {0} is already registered: unregister it first, or use a fresh id")]
    AlreadyRegistered(AgentId),

    /// A name is already given to another agent.
    #[error(
        "the name `{0}` is taken by another agent: pick another name, or stop that agent first"
    )]
    NameTaken(String),

    /// Something that can be set once was already set (a global recorder,
    /// a mailbox's ready hook, a waiter for a request id).
    #[error("{what} is already set: it is set once; keep the first, or make a new one")]
    AlreadySet {
        /// What was set.
        what: &'static str,
    },

    /// Two counters would be exposed under one Prometheus name (`jobs`
    /// gets the `_total` suffix that `jobs_total` already has).
    #[error("counter `{name}` would be exposed as `{exposed_as}`, which another counter has: it is kept as `{kept_as}`; rename one of them")]
    MetricNameCollision {
        /// The name the second counter was registered with.
        name: String,
        /// The exposition name both would have.
        exposed_as: String,
        /// The name it is recorded under instead.
        kept_as: String,
    },

    /// A call that goes to one agent was given [`Recipient::Broadcast`].
    ///
    /// [`Recipient::Broadcast`]: crate::Recipient::Broadcast
    #[error("{what} goes to one agent, not to a broadcast: address an agent, or use broadcast")]
    NeedsOneRecipient {
        /// The call.
        what: &'static str,
    },

    /// A frame read from the outside was malformed.
    #[error("invalid frame: {0}; the peer sent corrupt or foreign data, drop the connection")]
    InvalidFrame(#[from] FrameError),

    /// A configured limit was exceeded.
    #[error("{limit} exceeded: {value} > {max}; split the input or raise the limit")]
    LimitExceeded {
        /// Which limit.
        limit: &'static str,
        /// The value that was asked for.
        value: u64,
        /// The configured maximum.
        max: u64,
    },

    /// A configuration value is unusable.
    #[error("invalid configuration `{field}`: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is unusable, and the accepted range.
        reason: String,
    },

    /// A task panicked; the worker survived.
    #[error("task panicked: {message}; the worker lives on, fix the task or handle the error")]
    TaskPanicked {
        /// The panic message, when it was a string.
        message: String,
    },

    /// A task was cancelled before it ran (for example by `shutdown_now`).
    #[error("task was cancelled before it ran (shutdown_now or a dropped executor): resubmit it elsewhere if it still matters")]
    Cancelled,

    /// A message could not be delivered and will not be retried.
    #[error("message could not be delivered: {reason}; it was handed back, resend or log it")]
    Undeliverable {
        /// Why.
        reason: &'static str,
    },

    /// An I/O error from a transport.
    #[error("I/O error: {0}; check the peer and the network, then reconnect")]
    Io(#[from] std::io::Error),

    /// A payload (or a stored document, such as a baseline) could not be
    /// encoded, or decoded as the type asked for.
    #[error("not a valid {what}: {reason}; its writer and its reader disagree on the format")]
    Payload {
        /// The type (or format) expected.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },

    /// The call would wait for the thread making it (shutting a pool down
    /// from one of its own tasks, say).
    #[error(
        "{what} would wait for itself: call it from outside, or use the variant with a timeout"
    )]
    WouldDeadlock {
        /// What was called.
        what: &'static str,
    },
}

impl HiveError {
    /// A [`HiveError::Config`] for `field`, saying why and what is accepted.
    ///
    /// ```
    /// use hive_types::HiveError;
    /// let e = HiveError::config("workers", "must be at least 1");
    /// assert_eq!(e.to_string(), "invalid configuration `workers`: must be at least 1");
    /// ```
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        HiveError::Config {
            field,
            reason: reason.into(),
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HiveError::Full { .. } | HiveError::Timeout { .. })
    }

    /// Whether the target is closed for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, HiveError::Closed { .. })
    }

    /// Whether this is backpressure (a full queue).
    pub fn is_full(&self) -> bool {
        matches!(self, HiveError::Full { .. })
    }
}

/// Why a frame was rejected; see `docs/wire-format.md`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first bytes are not the hive magic.
    #[error("bad magic {found:02x?} (expected \"HIVE\")")]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// A version this build cannot read.
    #[error("unsupported version {0} (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// A codec byte this build does not know.
    #[error("unknown codec {0}")]
    UnknownCodec(u8),
    /// Flag bits that are reserved in this version.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// The frame ended before the bytes its header promised.
    #[error("truncated: needed {needed} bytes, only {available} available")]
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The body checksum did not match.
    #[error("checksum mismatch: header says {expected:#010x}, body hashes to {actual:#010x}")]
    ChecksumMismatch {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the bytes received.
        actual: u32,
    },
    /// Lengths or counts in the frame contradict each other.
    #[error("inconsistent frame: {0}")]
    Inconsistent(&'static str),
    /// A zstd dictionary id the decoder does not hold.
    #[error("unknown dictionary id {0}: register the dictionary with the decoder")]
    UnknownDictionary(u32),
    /// The compressed body did not decompress.
    #[error("body does not decompress: {0}")]
    Decompress(String),
}

/// A value that was refused, handed back with the reason.
///
/// Like crossbeam's `TrySendError<T>`, nothing is lost when a bounded queue
/// says no: the caller gets its message or closure back.
///
/// ```
/// use hive_types::{HiveError, Rejected};
///
/// let refused = Rejected::new("job", HiveError::Full { what: "queue", capacity: 8 });
/// assert!(refused.error().is_full());
/// assert_eq!(refused.into_inner(), "job");
/// ```
pub struct Rejected<T> {
    value: T,
    error: HiveError,
}

impl<T> Rejected<T> {
    /// Wraps the refused `value` with the `error` that refused it.
    pub fn new(value: T, error: HiveError) -> Self {
        Rejected { value, error }
    }

    /// Why the value was refused.
    pub fn error(&self) -> &HiveError {
        &self.error
    }

    /// The refused value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Gives the value back.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Splits into the value and the error.
    pub fn into_parts(self) -> (T, HiveError) {
        (self.value, self.error)
    }

    /// Whether the value was refused for lack of room.
    pub fn is_full(&self) -> bool {
        self.error.is_full()
    }

    /// Whether the value was refused because the target is closed.
    pub fn is_closed(&self) -> bool {
        self.error.is_closed()
    }
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for Rejected<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<Rejected<T>> for HiveError {
    fn from(rejected: Rejected<T>) -> Self {
        rejected.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error, with the advice its message must give (the part after
    /// what happened: what the caller should do).
    fn every_error() -> Vec<(HiveError, &'static str)> {
        vec![
            (
                HiveError::Full {
                    what: "mailbox",
                    capacity: 4,
                },
                "retry later, use the waiting variant, or raise the capacity",
            ),
            (
                HiveError::Closed {
                    what: "communicator",
                },
                "create a new one or stop sending",
            ),
            (
                HiveError::Timeout {
                    what: "send",
                    after: Duration::from_millis(5),
                },
                "retry, wait longer, or reduce the load",
            ),
            (
                HiveError::UnknownAgent(AgentId::nil()),
                "register it first, or check the id",
            ),
            (
                HiveError::AlreadyRegistered(AgentId::nil()),
                "unregister it first, or use a fresh id",
            ),
            (
                HiveError::NameTaken("planner".into()),
                "pick another name, or stop that agent first",
            ),
            (
                HiveError::AlreadySet {
                    what: "the global metrics recorder",
                },
                "keep the first, or make a new one",
            ),
            (
                HiveError::MetricNameCollision {
                    name: "jobs".into(),
                    exposed_as: "jobs_total".into(),
                    kept_as: "jobs_collided".into(),
                },
                "rename one of them",
            ),
            (
                HiveError::NeedsOneRecipient { what: "a request" },
                "address an agent, or use broadcast",
            ),
            (
                HiveError::InvalidFrame(FrameError::UnsupportedVersion(9)),
                "drop the connection",
            ),
            (
                HiveError::LimitExceeded {
                    limit: "frame size",
                    value: 10,
                    max: 5,
                },
                "split the input or raise the limit",
            ),
            (
                HiveError::Config {
                    field: "max_workers",
                    reason: "must be >= min_workers".into(),
                },
                "must be >= min_workers",
            ),
            (
                HiveError::TaskPanicked {
                    message: "boom".into(),
                },
                "fix the task or handle the error",
            ),
            (HiveError::Cancelled, "resubmit it elsewhere"),
            (
                HiveError::Undeliverable {
                    reason: "recipient unregistered",
                },
                "resend or log it",
            ),
            (
                HiveError::Io(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe")),
                "check the peer and the network, then reconnect",
            ),
            (
                HiveError::Payload {
                    what: "Score",
                    reason: "missing field `value`".into(),
                },
                "its writer and its reader disagree on the format",
            ),
            (
                HiveError::WouldDeadlock {
                    what: "Balancer::shutdown",
                },
                "call it from outside, or use the variant with a timeout",
            ),
        ]
    }

    #[test]
    fn every_error_says_what_and_what_to_do() {
        for (err, advice) in every_error() {
            let text = err.to_string();
            assert!(
                text.contains(advice),
                "`{text}` lacks its advice `{advice}`"
            );
            let (what, todo) = text.split_at(text.find(advice).unwrap_or(0));
            assert!(
                what.len() > 10,
                "says too little about what happened: {text}"
            );
            assert!(!todo.is_empty());
        }
    }

    #[test]
    fn specific_messages_carry_their_numbers() {
        let full = HiveError::Full {
            what: "mailbox",
            capacity: 4,
        }
        .to_string();
        assert!(full.contains("mailbox") && full.contains('4'), "{full}");
        let limit = HiveError::LimitExceeded {
            limit: "frame size",
            value: 10,
            max: 5,
        };
        assert!(limit.to_string().contains("10 > 5"));
        let frame = HiveError::from(FrameError::ChecksumMismatch {
            expected: 1,
            actual: 2,
        });
        assert!(frame.to_string().contains("checksum mismatch"));
    }

    #[test]
    fn classification() {
        assert!(HiveError::Full {
            what: "q",
            capacity: 1
        }
        .is_retryable());
        assert!(HiveError::Timeout {
            what: "q",
            after: Duration::ZERO
        }
        .is_retryable());
        assert!(!HiveError::Closed { what: "q" }.is_retryable());
        assert!(HiveError::Closed { what: "q" }.is_closed());
    }

    #[test]
    fn rejected_gives_the_value_back() {
        let r = Rejected::new(vec![1, 2, 3], HiveError::Closed { what: "mailbox" });
        assert!(r.is_closed());
        assert!(!r.is_full());
        assert!(r.to_string().contains("closed"));
        let (value, error) = r.into_parts();
        assert_eq!(value, vec![1, 2, 3]);
        assert!(error.is_closed());
    }
}
