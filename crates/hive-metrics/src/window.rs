//! Quantiles over a recent window: each histogram's past snapshots, kept
//! a few per window and subtracted from the current one.
//!
//! Recording stays one bucket increment: the window costs nothing until a
//! snapshot is taken. Each snapshot keeps a copy of a histogram's non-empty
//! buckets when the newest kept copy is at least a sixth of the window old,
//! and drops copies no longer needed. The quantiles of a snapshot cover
//! what was recorded since the newest kept copy at least a window old (or
//! the oldest one, while none is that old): between one window and a sixth
//! more when snapshots come at least every sixth of a window.

use std::collections::VecDeque;

use crate::keyed::SeriesMap;
use std::time::{Duration, Instant};

use hive_types::histogram::HistogramSnapshot;
use serde::{Deserialize, Serialize};

/// Copies kept per window; the window's span overshoots by at most
/// `1 / SLOTS` of it.
const SLOTS: u32 = 6;

/// Heap bytes one kept bucket takes (`(u32, u64)` with padding).
const BUCKET_BYTES: usize = 16;

/// Quantiles of what a histogram recorded over the recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowQuantiles {
    /// Seconds the window spans (the configured window or a little more;
    /// more when snapshots are rarer than a sixth of the window).
    pub secs: f64,
    /// Samples recorded in the window. With none, the quantiles are 0 and
    /// mean nothing (Prometheus shows `NaN`).
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// Past copies of each histogram, bounded in copies per series and in
/// bytes for all series together.
#[derive(Debug, Default)]
pub(crate) struct QuantileTracker {
    series: SeriesMap<u64, VecDeque<(Instant, HistogramSnapshot)>>,
    bytes: usize,
    /// Copies not kept because the byte budget was spent.
    pub(crate) skipped: u64,
}

fn bytes_of(s: &HistogramSnapshot) -> usize {
    s.buckets().count() * BUCKET_BYTES + std::mem::size_of::<(Instant, HistogramSnapshot)>()
}

impl QuantileTracker {
    /// What series `id` recorded over the window ending `now`, in its
    /// scaled units, and its span; `None` for a series seen for the first
    /// time. Keeps `current` when the newest copy is old enough and the
    /// budget allows.
    pub(crate) fn observe(
        &mut self,
        id: u64,
        now: Instant,
        current: &HistogramSnapshot,
        window: Duration,
        max_bytes: usize,
    ) -> Option<(Duration, HistogramSnapshot)> {
        let kept = self.series.entry(id).or_default();
        // Keep one copy at least a window old: the window's start.
        while kept
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= window)
        {
            if let Some((_, old)) = kept.pop_front() {
                self.bytes = self.bytes.saturating_sub(bytes_of(&old));
            }
        }
        let seen = kept
            .front()
            .map(|(t, base)| (now.duration_since(*t), current.since(base)));
        let due = kept
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= window / SLOTS);
        if due {
            let cost = bytes_of(current);
            if self.bytes + cost <= max_bytes {
                self.bytes += cost;
                kept.push_back((now, current.clone()));
            } else {
                self.skipped += 1;
            }
        }
        seen
    }

    /// Heap bytes the kept copies hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::histogram::AtomicHistogram;

    #[test]
    fn the_window_forgets_what_is_older_than_it() {
        let h = AtomicHistogram::new(7);
        let mut t = QuantileTracker::default();
        let start = Instant::now();
        let w = Duration::from_secs(60);
        let at = |s: u64| start + Duration::from_secs(s);
        for _ in 0..100 {
            h.record(2_000);
        }
        assert!(t.observe(1, at(0), &h.snapshot(), w, usize::MAX).is_none());
        // Snapshots every 10 s; the latency jumps at 30 s.
        let mut last = None;
        for s in (10..=100).step_by(10) {
            if s == 30 {
                for _ in 0..100 {
                    h.record(50_000);
                }
            }
            last = t.observe(1, at(s), &h.snapshot(), w, usize::MAX);
            if s == 40 {
                let (span, seen) = last.clone().unwrap();
                assert_eq!(span, Duration::from_secs(40), "nothing is a window old yet");
                assert_eq!(seen.count(), 100, "the 2 ms samples predate the first copy");
            }
        }
        let (span, seen) = last.unwrap();
        assert_eq!(span, Duration::from_secs(60));
        assert_eq!(
            seen.count(),
            0,
            "the jump at 30 s is more than a window ago"
        );
        assert!(t.series[&1].len() <= SLOTS as usize + 1);
    }

    #[test]
    fn copies_stop_at_the_byte_budget() {
        let h = AtomicHistogram::new(7);
        h.record(1);
        let mut t = QuantileTracker::default();
        let now = Instant::now();
        let budget = bytes_of(&h.snapshot());
        t.observe(1, now, &h.snapshot(), Duration::from_secs(1), budget);
        t.observe(2, now, &h.snapshot(), Duration::from_secs(1), budget);
        assert_eq!((t.bytes(), t.skipped), (budget, 1));
    }
}
