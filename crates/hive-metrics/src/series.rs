//! Storage of one series: counter, gauge, or histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hive_types::histogram::{AtomicHistogram, HistogramSnapshot};
use metrics::{CounterFn, GaugeFn, HistogramFn};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub(crate) struct CounterCell(AtomicU64);

impl CounterCell {
    pub(crate) fn value(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// A value that goes up and down (an f64 in an atomic).
#[derive(Debug)]
pub(crate) struct GaugeCell(AtomicU64);

impl Default for GaugeCell {
    fn default() -> Self {
        GaugeCell(AtomicU64::new(0f64.to_bits()))
    }
}

impl GaugeCell {
    pub(crate) fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// Histogram values are stored in units of 1e-9 (nanoseconds for a
/// histogram of seconds), so values from 1e-9 to 1.8e10 keep their
/// relative precision.
pub(crate) const SCALE: f64 = 1e9;

/// A distribution aggregated as samples arrive: bounded memory, bounded
/// relative error (see [`AtomicHistogram`]).
#[derive(Debug)]
pub(crate) struct HistogramCell {
    hist: AtomicHistogram,
    /// Samples below zero are clamped to zero and counted here.
    negative: AtomicU64,
}

impl HistogramCell {
    pub(crate) fn new(precision: u8) -> Self {
        HistogramCell {
            hist: AtomicHistogram::new(precision),
            negative: AtomicU64::new(0),
        }
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        self.hist.snapshot()
    }

    pub(crate) fn negative(&self) -> u64 {
        self.negative.load(Ordering::Relaxed)
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.hist.allocated_bytes()
    }
}

impl HistogramFn for HistogramCell {
    #[inline]
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    #[inline]
    fn record_many(&self, value: f64, count: usize) {
        if value < 0.0 {
            self.negative.fetch_add(count as u64, Ordering::Relaxed);
        }
        // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
        let scaled = (value * SCALE) as u64;
        self.hist.record_n(scaled, count as u64);
    }
}

/// Cell types the registry stores.
#[derive(Debug)]
pub(crate) struct HiveStorage {
    pub(crate) precision: u8,
}

impl<K> metrics_util::registry::Storage<K> for HiveStorage {
    type Counter = Arc<CounterCell>;
    type Gauge = Arc<GaugeCell>;
    type Histogram = Arc<HistogramCell>;

    fn counter(&self, _: &K) -> Self::Counter {
        Arc::new(CounterCell::default())
    }

    fn gauge(&self, _: &K) -> Self::Gauge {
        Arc::new(GaugeCell::default())
    }

    fn histogram(&self, _: &K) -> Self::Histogram {
        Arc::new(HistogramCell::new(self.precision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge_semantics() {
        let c = CounterCell::default();
        c.increment(3);
        c.increment(4);
        assert_eq!(c.value(), 7);
        c.absolute(5);
        assert_eq!(c.value(), 7, "absolute never moves a counter back");
        c.absolute(10);
        assert_eq!(c.value(), 10);
        let g = GaugeCell::default();
        g.set(2.5);
        g.increment(1.0);
        g.decrement(0.5);
        assert_eq!(g.value(), 3.0);
    }

    #[test]
    fn histogram_keeps_sub_microsecond_precision() {
        let h = HistogramCell::new(7);
        h.record(0.000_001_5); // 1.5 us
        h.record(-1.0);
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert_eq!(h.negative(), 1);
        assert_eq!(s.max(), 1500);
    }
}
