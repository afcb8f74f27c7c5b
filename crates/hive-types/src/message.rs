//! The message envelope every hive component moves.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{AgentId, MessageId, MessageKind, Priority, Receipt, Recipient};

/// Wall-clock time in microseconds since the Unix epoch.
///
/// Wall-clock rather than monotonic because it crosses process boundaries on
/// the wire. Reading it is a vDSO call, not a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time.
    #[inline]
    pub fn now() -> Timestamp {
        // u64 arithmetic: `as_micros` would go through u128 on every message.
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            d.as_secs()
                .saturating_mul(1_000_000)
                .saturating_add(u64::from(d.subsec_micros()))
        });
        Timestamp(micros)
    }

    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_micros(micros: u64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// This timestamp moved `by` into the future (saturating).
    pub fn saturating_add(self, by: Duration) -> Timestamp {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }
}

/// The envelope of everything agents exchange.
///
/// The payload is [`bytes::Bytes`]: cloning a message for a broadcast to a
/// thousand agents bumps a reference count instead of copying the payload a
/// thousand times, and a payload sliced out of a received frame shares the
/// frame's buffer. A `Vec<u8>` would copy on every clone.
///
/// Build one with [`Message::builder`], [`Message::new`] or
/// [`Message::request`]; answer a request with [`Message::reply`].
///
/// ```
/// use std::time::Duration;
/// use hive_types::{AgentId, Message, MessageKind, Priority};
///
/// let (alice, bob) = (AgentId::random(), AgentId::random());
/// let ask = Message::request(alice, bob, "what is 6 x 7?");
/// let answer = ask.reply(bob, "42");
/// assert_eq!(answer.kind, MessageKind::Response);
/// assert_eq!(answer.correlation_id, Some(ask.id));
///
/// let alarm = Message::builder(alice, bob)
///     .priority(Priority::Critical)
///     .ttl(Duration::from_secs(5))
///     .payload("disk full")
///     .build();
/// assert!(!alarm.is_expired());
/// ```
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Message {
    /// Unique id of this message.
    pub id: MessageId,
    /// The agent that sent it.
    pub sender: AgentId,
    /// Who it is for.
    pub recipient: Recipient,
    /// What it is about.
    pub kind: MessageKind,
    /// How urgent it is.
    pub priority: Priority,
    /// When it was created (wall clock).
    pub created_at: Timestamp,
    /// For a response: the id of the request it answers.
    pub correlation_id: Option<MessageId>,
    /// How long after `created_at` the message stays useful.
    pub ttl: Option<Duration>,
    /// The application's bytes.
    pub payload: Bytes,
    /// The trace context of the span that sent it, for tracing across
    /// processes (set by hive-core's `tracing` feature with a propagator;
    /// boxed, so a message without one stays small).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub trace: Option<Box<TraceContext>>,
    /// Set on a message that arrived through a transport with
    /// acknowledgements (hive over JetStream): dropping the message, once
    /// handled, lets the transport acknowledge it (see [`Receipt`]). Never
    /// sent on the wire.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub receipt: Option<Receipt>,
}

/// A W3C trace context (the binary fields of a `traceparent` header): the
/// trace a message belongs to and the span that sent it. Carried on the
/// wire after a message record's envelope when its flag bit 2 is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TraceContext {
    /// The trace's id (all zero is invalid).
    pub trace_id: [u8; 16],
    /// The sending span's id (all zero is invalid).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

/// Bytes a [`TraceContext`] adds to a message record on the wire.
pub const TRACE_BYTES: usize = 25;

impl Message {
    /// A `Normal`-priority [`MessageKind::Data`] message.
    pub fn new(
        sender: AgentId,
        recipient: impl Into<Recipient>,
        payload: impl Into<Bytes>,
    ) -> Self {
        Message::builder(sender, recipient).payload(payload).build()
    }

    /// A [`MessageKind::Request`]; answer it with [`Message::reply`].
    pub fn request(
        sender: AgentId,
        recipient: impl Into<Recipient>,
        payload: impl Into<Bytes>,
    ) -> Self {
        Message::builder(sender, recipient)
            .kind(MessageKind::Request)
            .payload(payload)
            .build()
    }

    /// Starts a message from `sender` to `recipient` with the defaults:
    /// kind `Data`, priority `Normal`, no TTL, no correlation id, empty payload.
    pub fn builder(sender: AgentId, recipient: impl Into<Recipient>) -> MessageBuilder {
        MessageBuilder {
            sender,
            recipient: recipient.into(),
            kind: MessageKind::default(),
            priority: Priority::default(),
            correlation_id: None,
            ttl: None,
            payload: Bytes::new(),
            trace: None,
        }
    }

    /// A [`MessageKind::Response`] from `responder` back to this message's
    /// sender, correlated with this message's id, at the same priority.
    pub fn reply(&self, responder: AgentId, payload: impl Into<Bytes>) -> Message {
        Message::builder(responder, self.sender)
            .kind(MessageKind::Response)
            .priority(self.priority)
            .correlation_id(self.id)
            .payload(payload)
            .build()
    }

    /// Whether the TTL has run out at time `now`. A message without a TTL
    /// never expires; one whose TTL has not yet fully elapsed is still live.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        match self.ttl {
            Some(ttl) => now.saturating_since(self.created_at) > ttl,
            None => false,
        }
    }

    /// Whether the TTL has run out now.
    pub fn is_expired(&self) -> bool {
        self.ttl.is_some() && self.is_expired_at(Timestamp::now())
    }

    /// Size the message accounts for in batch byte limits: the payload plus a
    /// fixed envelope estimate.
    #[inline]
    pub fn accounted_len(&self) -> usize {
        let trace = if self.trace.is_some() { TRACE_BYTES } else { 0 };
        ENVELOPE_BYTES + trace + self.payload.len()
    }
}

/// Envelope bytes counted per message in size limits: the bytes of a wire
/// record before its payload (`docs/wire-format.md`; pinned there by a
/// `const` assertion on the record layout).
pub const ENVELOPE_BYTES: usize = 95;

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .field("kind", &self.kind)
            .field("priority", &self.priority)
            .field("created_at", &self.created_at)
            .field("correlation_id", &self.correlation_id)
            .field("ttl", &self.ttl)
            .field("trace", &self.trace)
            .field("receipt", &self.receipt)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Builds a [`Message`]; see [`Message::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MessageBuilder {
    sender: AgentId,
    recipient: Recipient,
    kind: MessageKind,
    priority: Priority,
    correlation_id: Option<MessageId>,
    ttl: Option<Duration>,
    payload: Bytes,
    trace: Option<Box<TraceContext>>,
}

impl MessageBuilder {
    /// Sets the kind.
    pub fn kind(mut self, kind: MessageKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the correlation id (the request a response answers).
    pub fn correlation_id(mut self, id: MessageId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets a time to live, counted from creation.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Sets the trace context of the span sending it.
    pub fn trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(Box::new(trace));
        self
    }

    /// Finishes the message with a fresh id and the current time.
    pub fn build(self) -> Message {
        Message {
            id: MessageId::random(),
            sender: self.sender,
            recipient: self.recipient,
            kind: self.kind,
            priority: self.priority,
            created_at: Timestamp::now(),
            correlation_id: self.correlation_id,
            ttl: self.ttl,
            payload: self.payload,
            trace: self.trace,
            receipt: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_defaults() {
        let (a, b) = (AgentId::random(), AgentId::random());
        let before = Timestamp::now();
        let m = Message::builder(a, b).build();
        assert_eq!(m.sender, a);
        assert_eq!(m.recipient, Recipient::Agent(b));
        assert_eq!(m.kind, MessageKind::Data);
        assert_eq!(m.priority, Priority::Normal);
        assert_eq!(m.correlation_id, None);
        assert_eq!(m.ttl, None);
        assert!(m.payload.is_empty());
        assert!(m.created_at >= before);
    }

    #[test]
    fn is_expired_both_ways() {
        let m = Message::builder(AgentId::nil(), Recipient::Broadcast)
            .ttl(Duration::from_millis(100))
            .build();
        let created = m.created_at;
        assert!(!m.is_expired_at(created));
        assert!(!m.is_expired_at(created.saturating_add(Duration::from_millis(100))));
        assert!(m.is_expired_at(created.saturating_add(Duration::from_millis(101))));
        // A clock that went backwards never expires a message early.
        assert!(!m.is_expired_at(Timestamp::from_micros(0)));
        let forever = Message::new(AgentId::nil(), Recipient::Broadcast, "x");
        assert!(!forever.is_expired_at(Timestamp::from_micros(u64::MAX)));
    }

    #[test]
    fn reply_goes_back_correlated() {
        let (a, b) = (AgentId::random(), AgentId::random());
        let req = Message::builder(a, b)
            .kind(MessageKind::Request)
            .priority(Priority::High)
            .payload("q")
            .build();
        let resp = req.reply(b, "a");
        assert_eq!(resp.sender, b);
        assert_eq!(resp.recipient, Recipient::Agent(a));
        assert_eq!(resp.correlation_id, Some(req.id));
        assert_eq!(resp.priority, Priority::High);
        assert_ne!(resp.id, req.id);
    }

    #[test]
    fn debug_hides_payload_bytes() {
        let m = Message::new(AgentId::nil(), Recipient::Broadcast, "secret");
        let text = format!("{m:?}");
        assert!(text.contains("payload_len: 6"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
