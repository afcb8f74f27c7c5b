//! One set of counters for every transport, with one set of metric names
//! (`hive_transport_*`, labelled `transport="tcp"` or `"nats"`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What a transport (one TCP link, or a NATS connection) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Message frames written (or published).
    pub frames_sent: u64,
    /// Messages written (or published).
    pub messages_sent: u64,
    /// Messages the receiving process acknowledged: delivered.
    pub messages_acked: u64,
    /// Messages written but never acknowledged: their fate is unknown.
    pub messages_unknown: u64,
    /// Messages known not to have been delivered (never written, or nobody
    /// there to take them).
    pub messages_not_sent: u64,
    /// Messages received from the other side and handed to local mailboxes.
    pub messages_received: u64,
    /// Received messages dropped as duplicates of one taken before.
    pub duplicates_dropped: u64,
    /// Bytes written (frames, headers included).
    pub bytes_sent: u64,
    /// Raw bytes of the written messages before compression.
    pub raw_bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Frames rejected by the decoder or a limit (the link then closes).
    pub frames_rejected: u64,
    /// Times the connection was re-established (NATS).
    pub reconnects: u64,
}

impl TransportStats {
    /// Messages accepted and not acknowledged: reported unknown or not sent.
    pub fn undelivered(&self) -> u64 {
        self.messages_unknown + self.messages_not_sent
    }
}

impl std::ops::AddAssign for TransportStats {
    /// Adds `other`'s counts (a server's links, say).
    fn add_assign(&mut self, other: TransportStats) {
        self.frames_sent += other.frames_sent;
        self.messages_sent += other.messages_sent;
        self.messages_acked += other.messages_acked;
        self.messages_unknown += other.messages_unknown;
        self.messages_not_sent += other.messages_not_sent;
        self.messages_received += other.messages_received;
        self.duplicates_dropped += other.duplicates_dropped;
        self.bytes_sent += other.bytes_sent;
        self.raw_bytes_sent += other.raw_bytes_sent;
        self.bytes_received += other.bytes_received;
        self.frames_rejected += other.frames_rejected;
        self.reconnects += other.reconnects;
    }
}

/// The counters behind [`TransportStats`], and their metrics.
#[derive(Debug)]
pub(crate) struct Counters {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))] // names the metrics
    transport: &'static str,
    frames_sent: AtomicU64,
    messages_sent: AtomicU64,
    messages_acked: AtomicU64,
    messages_unknown: AtomicU64,
    messages_not_sent: AtomicU64,
    messages_received: AtomicU64,
    duplicates_dropped: AtomicU64,
    bytes_sent: AtomicU64,
    raw_bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    frames_rejected: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn new(transport: &'static str) -> Self {
        Counters {
            transport,
            frames_sent: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_acked: AtomicU64::new(0),
            messages_unknown: AtomicU64::new(0),
            messages_not_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            duplicates_dropped: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            raw_bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            frames_rejected: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    fn outcome(&self, outcome: &'static str, n: u64) {
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_transport_messages_total", "transport" => self.transport, "outcome" => outcome)
            .increment(n);
        #[cfg(not(feature = "metrics"))]
        let _ = (outcome, n);
    }

    /// A frame of `messages` went out: `raw` bytes before, `wire` after.
    pub(crate) fn frame_sent(&self, messages: usize, raw: usize, wire: usize) {
        self.frames_sent.fetch_add(1, Relaxed);
        self.messages_sent.fetch_add(messages as u64, Relaxed);
        self.raw_bytes_sent.fetch_add(raw as u64, Relaxed);
        self.bytes_sent.fetch_add(wire as u64, Relaxed);
        self.outcome("sent", messages as u64);
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_transport_bytes_total", "transport" => self.transport, "direction" => "out")
            .increment(wire as u64);
    }

    pub(crate) fn acked(&self, n: usize) {
        self.messages_acked.fetch_add(n as u64, Relaxed);
        self.outcome("acked", n as u64);
    }

    pub(crate) fn unknown(&self, n: usize) {
        self.messages_unknown.fetch_add(n as u64, Relaxed);
        self.outcome("unknown", n as u64);
    }

    pub(crate) fn not_sent(&self, n: usize) {
        self.messages_not_sent.fetch_add(n as u64, Relaxed);
        self.outcome("not_sent", n as u64);
    }

    pub(crate) fn received(&self, n: usize, duplicates: usize) {
        self.messages_received.fetch_add(n as u64, Relaxed);
        self.duplicates_dropped
            .fetch_add(duplicates as u64, Relaxed);
        self.outcome("received", n as u64);
        if duplicates > 0 {
            self.outcome("duplicate", duplicates as u64);
        }
    }

    pub(crate) fn bytes_in(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_transport_bytes_total", "transport" => self.transport, "direction" => "in")
            .increment(n as u64);
    }

    /// A frame was rejected, or a limit hit, for `reason`.
    pub(crate) fn rejected(&self, reason: &'static str) {
        self.frames_rejected.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_transport_rejected_total", "transport" => self.transport, "reason" => reason)
            .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = reason;
    }

    pub(crate) fn snapshot(&self) -> TransportStats {
        TransportStats {
            frames_sent: self.frames_sent.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_acked: self.messages_acked.load(Relaxed),
            messages_unknown: self.messages_unknown.load(Relaxed),
            messages_not_sent: self.messages_not_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            duplicates_dropped: self.duplicates_dropped.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            raw_bytes_sent: self.raw_bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            frames_rejected: self.frames_rejected.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
        }
    }
}
