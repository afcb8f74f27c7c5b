//! Counters, histograms and metrics of a communicator.
//!
//! Everything is recorded per batch, never per message: a sender counts its
//! messages under the lock it already holds, and the figures that go to the
//! `metrics` facade are added when a batch is flushed or delivered.

use std::time::Duration;

use hive_types::histogram::{AtomicHistogram, HistogramSnapshot, COARSE, PRECISE};
use hive_types::AgentId;

use crate::batch::FlushReason;
use crate::undelivered::UndeliveredReason;

/// Per-sender counts, kept under the sender's own lock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendCounts {
    pub(crate) sent: u64,
    pub(crate) flushes: [u64; FlushReason::ALL.len()],
}

impl SendCounts {
    pub(crate) fn add(&mut self, other: &SendCounts) {
        self.sent += other.sent;
        for (a, b) in self.flushes.iter_mut().zip(other.flushes) {
            *a += b;
        }
    }
}

/// Shared recorders of a communicator.
#[derive(Debug)]
pub(crate) struct Recorders {
    pub(crate) batch_sizes: AtomicHistogram,
    pub(crate) latency_ns: AtomicHistogram,
    metrics: Metrics,
    /// When the depth gauge was last published (communicator nanoseconds).
    depth_published: std::sync::atomic::AtomicU64,
}

impl Recorders {
    pub(crate) fn new() -> Self {
        Recorders {
            batch_sizes: AtomicHistogram::new(COARSE),
            latency_ns: AtomicHistogram::new(PRECISE),
            metrics: Metrics::register(),
            depth_published: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A batch of `len` messages left a sender.
    #[inline]
    pub(crate) fn flushed(&self, reason: FlushReason, len: usize) {
        self.batch_sizes.record(len as u64);
        self.metrics.flushed(reason, len);
    }

    /// A consumer took a batch whose oldest message waited `waited`.
    #[inline]
    pub(crate) fn taken(&self, waited: Duration) {
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns.record(ns);
        self.metrics.taken(waited);
    }

    /// A consumer handed out `n` messages.
    #[inline]
    pub(crate) fn delivered(&self, n: usize) {
        self.metrics.delivered(n);
    }

    pub(crate) fn undeliverable(&self, reason: UndeliveredReason, n: u64) {
        self.metrics.undeliverable(reason, n);
    }

    /// Publishes the messages queued in all mailboxes, at most every
    /// 100 ms (it visits every mailbox).
    pub(crate) fn maybe_publish_depth(&self, registry: &crate::registry::Registry, now: u64) {
        let last = self
            .depth_published
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) < 100_000_000 && last != 0 {
            return;
        }
        self.depth_published
            .store(now.max(1), std::sync::atomic::Ordering::Relaxed);
        let queued: usize = registry.inboxes().iter().map(|i| i.queued()).sum();
        self.metrics.depth(queued);
    }
}

/// Queue depth of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxDepth {
    /// The agent.
    pub agent: AgentId,
    /// Messages waiting for its consumer (queued or read ahead).
    pub queued: usize,
    /// Messages accepted for it and not handed out: waiting, plus those
    /// still in senders' batches.
    pub accepted: usize,
    /// How long the oldest waiting message has waited.
    pub lag: Duration,
}

/// A snapshot of a communicator.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CommunicatorStats {
    /// Messages accepted by `send`/`try_send`/`broadcast` (one per recipient).
    pub sent: u64,
    /// Messages handed out by mailboxes to their consumers (agents, and
    /// transport links forwarding them to another process), plus replies
    /// handed to waiting requests.
    pub delivered: u64,
    /// Replies handed to waiting requests (counted in `delivered` too).
    pub replies: u64,
    /// Requests waiting for a reply now.
    pub pending_requests: usize,
    /// Messages that were not delivered (see `take_undelivered`), whatever
    /// the reason.
    pub undeliverable: u64,
    /// The same, by reason.
    pub undeliverable_by_reason: Vec<(UndeliveredReason, u64)>,
    /// Undelivered messages counted but not kept (the store was full).
    pub undelivered_evicted: u64,
    /// Batches flushed, by reason.
    pub flushes: Vec<(FlushReason, u64)>,
    /// Messages per flushed batch.
    pub batch_size: HistogramSnapshot,
    /// Time from a batch's first message to its consumer taking it, in
    /// nanoseconds: the wait of the oldest message of each batch, so an
    /// upper bound for every message in it.
    pub batch_latency_ns: HistogramSnapshot,
    /// Depth of every registered mailbox.
    pub mailboxes: Vec<MailboxDepth>,
}

impl CommunicatorStats {
    /// Batches flushed for `reason`.
    pub fn flushes_for(&self, reason: FlushReason) -> u64 {
        self.flushes
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Total batches flushed.
    pub fn batches(&self) -> u64 {
        self.flushes.iter().map(|(_, n)| n).sum()
    }

    /// Messages not delivered for `reason`.
    pub fn undeliverable_for(&self, reason: UndeliveredReason) -> u64 {
        self.undeliverable_by_reason
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Metrics {
    sent: metrics::Counter,
    delivered: metrics::Counter,
    undeliverable: Vec<metrics::Counter>,
    flushes: Vec<metrics::Counter>,
    batch_size: metrics::Histogram,
    latency: metrics::Histogram,
    depth: metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl Metrics {
    fn register() -> Self {
        metrics::describe_counter!(
            "hive_messaging_sent_total",
            "Messages accepted by senders and flushed in batches"
        );
        metrics::describe_counter!(
            "hive_messaging_delivered_total",
            "Messages taken out of mailboxes by their consumers"
        );
        metrics::describe_counter!(
            "hive_messaging_undeliverable_total",
            "Messages not delivered, by reason; kept for take_undelivered"
        );
        metrics::describe_counter!("hive_messaging_batches_total", "Batches flushed, by reason");
        metrics::describe_histogram!("hive_messaging_batch_size", "Messages per flushed batch");
        metrics::describe_histogram!(
            "hive_messaging_batch_latency_seconds",
            metrics::Unit::Seconds,
            "Time from a batch's first message to its consumer taking it"
        );
        metrics::describe_gauge!(
            "hive_messaging_queued_messages",
            "Messages queued in all mailboxes"
        );
        Metrics {
            sent: metrics::counter!("hive_messaging_sent_total"),
            delivered: metrics::counter!("hive_messaging_delivered_total"),
            undeliverable: UndeliveredReason::ALL
                .iter()
                .map(|r| {
                    metrics::counter!("hive_messaging_undeliverable_total", "reason" => r.as_str())
                })
                .collect(),
            flushes: FlushReason::ALL
                .iter()
                .map(|r| metrics::counter!("hive_messaging_batches_total", "reason" => r.as_str()))
                .collect(),
            batch_size: metrics::histogram!("hive_messaging_batch_size"),
            latency: metrics::histogram!("hive_messaging_batch_latency_seconds"),
            depth: metrics::gauge!("hive_messaging_queued_messages"),
        }
    }

    fn flushed(&self, reason: FlushReason, len: usize) {
        self.sent.increment(len as u64);
        if let Some(c) = self.flushes.get(reason.index()) {
            c.increment(1);
        }
        self.batch_size.record(len as f64);
    }

    fn taken(&self, waited: Duration) {
        self.latency.record(waited.as_secs_f64());
    }

    fn delivered(&self, n: usize) {
        self.delivered.increment(n as u64);
    }

    fn undeliverable(&self, reason: UndeliveredReason, n: u64) {
        if let Some(c) = self.undeliverable.get(reason.index()) {
            c.increment(n);
        }
    }

    fn depth(&self, queued: usize) {
        self.depth.set(queued as f64);
    }
}

#[cfg(not(feature = "metrics"))]
#[derive(Debug)]
struct Metrics;

#[cfg(not(feature = "metrics"))]
impl Metrics {
    fn register() -> Self {
        Metrics
    }
    fn flushed(&self, _: FlushReason, _: usize) {}
    fn taken(&self, _: Duration) {}
    fn delivered(&self, _: usize) {}
    fn undeliverable(&self, _: UndeliveredReason, _: u64) {}
    fn depth(&self, _: usize) {}
}
