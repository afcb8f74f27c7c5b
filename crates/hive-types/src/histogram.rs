//! A lock-free log-linear histogram with bounded memory and bounded error.
//!
//! Values are `u64` (nanoseconds, bytes, counts). Each power of two is split
//! into `2^precision` equal buckets, so a reported quantile is within
//! `2^-(precision+1)` of the true value (precision 7: 0.4%). Bucket groups are
//! allocated the first time a value lands in them, so a histogram of
//! latencies that span a few octaves costs a few KiB, and never more than
//! `(65 - precision) * 2^precision` counters whatever is recorded.
//!
//! Recording is two relaxed atomic adds (plus a compare for min/max, and an
//! atomic or the first time a bucket is used), so many threads can record
//! into one histogram; a snapshot copies the non-empty buckets, found
//! through each group's bitmap of used buckets rather than by reading them
//! all.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Precision for percentiles within 1%: 128 buckets per octave (0.4% error).
pub const PRECISE: u8 = 7;
/// Precision for component statistics: 16 buckets per octave (3% error).
pub const COARSE: u8 = 4;

/// A concurrent histogram of `u64` values; see the module docs.
///
/// ```
/// use hive_types::histogram::{AtomicHistogram, PRECISE};
///
/// let h = AtomicHistogram::new(PRECISE);
/// for v in 1..=1000 {
///     h.record(v);
/// }
/// let s = h.snapshot();
/// assert_eq!(s.count(), 1000);
/// let p99 = s.quantile(0.99) as f64;
/// assert!((p99 - 990.0).abs() / 990.0 <= 0.01);
/// ```
pub struct AtomicHistogram {
    precision: u8,
    groups: Box<[OnceLock<Box<[AtomicU64]>>]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram with `2^precision` buckets per octave; `precision`
    /// is clamped to 1..=10.
    pub fn new(precision: u8) -> Self {
        let precision = precision.clamp(1, 10);
        let groups = (0..group_count(precision))
            .map(|_| OnceLock::new())
            .collect();
        AtomicHistogram {
            precision,
            groups,
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `n` times.
    #[inline]
    pub fn record_n(&self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let (group, slot) = locate(value, self.precision);
        let width = 1usize << self.precision;
        if let Some(cell) = self.groups.get(group) {
            // A group: its buckets, then a bitmap of the used ones.
            let cells = cell.get_or_init(|| {
                (0..width + bitmap_words(width))
                    .map(|_| AtomicU64::new(0))
                    .collect()
            });
            if let Some(bucket) = cells.get(slot) {
                if bucket.fetch_add(n, Relaxed) == 0 {
                    if let Some(word) = cells.get(width + slot / 64) {
                        word.fetch_or(1 << (slot % 64), Relaxed);
                    }
                }
            }
        }
        self.sum.fetch_add(value.wrapping_mul(n), Relaxed);
        if value < self.min.load(Relaxed) {
            self.min.fetch_min(value, Relaxed);
        }
        if value > self.max.load(Relaxed) {
            self.max.fetch_max(value, Relaxed);
        }
    }

    /// A copy of the current counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let width = 1usize << self.precision;
        let used = |cells: &[AtomicU64]| {
            let words = cells.get(width..).unwrap_or_default();
            words
                .iter()
                .map(|w| w.load(Relaxed).count_ones() as usize)
                .sum::<usize>()
        };
        let room = self
            .groups
            .iter()
            .filter_map(|c| c.get())
            .map(|c| used(c))
            .sum();
        let mut buckets = Vec::with_capacity(room);
        let mut count = 0u64;
        for (g, cell) in self.groups.iter().enumerate() {
            let Some(cells) = cell.get() else {
                continue;
            };
            let (slots, used) = cells.split_at(width.min(cells.len()));
            for (w, word) in used.iter().enumerate() {
                let mut bits = word.load(Relaxed);
                while bits != 0 {
                    let s = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let n = slots.get(s).map_or(0, |b| b.load(Relaxed));
                    if n > 0 {
                        let index = (g << self.precision) | s;
                        buckets.push((index as u32, n));
                        count += n;
                    }
                }
            }
        }
        HistogramSnapshot {
            precision: self.precision,
            count,
            sum: self.sum.load(Relaxed),
            min: self.min.load(Relaxed),
            max: self.max.load(Relaxed),
            buckets,
        }
    }

    /// Heap bytes held by the bucket groups allocated so far.
    pub fn allocated_bytes(&self) -> usize {
        let width = 1usize << self.precision;
        let groups = self.groups.iter().filter(|g| g.get().is_some()).count();
        groups * 8 * (width + bitmap_words(width)) + self.groups.len() * size_of_cell()
    }
}

/// Words of a group's bitmap of used buckets.
const fn bitmap_words(width: usize) -> usize {
    width.div_ceil(64)
}

fn size_of_cell() -> usize {
    std::mem::size_of::<OnceLock<Box<[AtomicU64]>>>()
}

impl fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicHistogram")
            .field("precision", &self.precision)
            .field("max", &self.max.load(Relaxed))
            .finish_non_exhaustive()
    }
}

const fn group_count(precision: u8) -> usize {
    65 - precision as usize
}

/// Group and slot of `value`: group 0 holds `0..2^p` exactly; group `g >= 1`
/// holds `[2^(g+p-1), 2^(g+p))` in buckets `2^(g-1)` wide.
#[inline]
fn locate(value: u64, precision: u8) -> (usize, usize) {
    let p = u32::from(precision);
    if value < (1u64 << p) {
        return (0, value as usize);
    }
    let top_bit = 63 - value.leading_zeros();
    let shift = top_bit - p;
    let slot = (value >> shift) - (1u64 << p);
    ((shift + 1) as usize, slot as usize)
}

/// Lowest value and width of the bucket at `index`.
fn bucket_bounds(index: u32, precision: u8) -> (u64, u64) {
    let p = u32::from(precision);
    let group = index >> p;
    let slot = u64::from(index & ((1 << p) - 1));
    if group == 0 {
        return (slot, 1);
    }
    let width = 1u64 << (group - 1);
    (((1u64 << p) + slot).saturating_mul(width), width)
}

/// A point-in-time copy of an [`AtomicHistogram`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    precision: u8,
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// Non-empty buckets as (index, count), ascending.
    buckets: Vec<(u32, u64)>,
}

impl HistogramSnapshot {
    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values recorded (wrapping on overflow).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Smallest value recorded, 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// Largest value recorded, 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the values, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the midpoint of the bucket that
    /// holds the `ceil(q * count)`-th smallest value, clamped to min..=max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_bounds(index, self.precision);
                let mid = low.saturating_add(width / 2);
                return mid.clamp(self.min(), self.max);
            }
        }
        self.max
    }

    /// Sum of the values in `f64`: [`sum`](Self::sum) when it cannot have
    /// wrapped (count × max fits in a `u64`), else estimated from bucket
    /// midpoints (within the precision).
    pub fn estimated_sum(&self) -> f64 {
        if u128::from(self.count) * u128::from(self.max) <= u128::from(u64::MAX) {
            return self.sum as f64;
        }
        self.buckets
            .iter()
            .map(|&(index, n)| {
                let (low, width) = bucket_bounds(index, self.precision);
                let mid = low.saturating_add(width / 2).clamp(self.min(), self.max);
                mid as f64 * n as f64
            })
            .sum()
    }

    /// Several quantiles in one pass over the buckets; `qs` ascending.
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        let mut out = [0u64; N];
        if self.count == 0 {
            return out;
        }
        let ranks = qs.map(|q| ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1));
        let mut next = 0;
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen += n;
            while next < N && ranks.get(next).is_some_and(|&r| seen >= r) {
                let (low, width) = bucket_bounds(index, self.precision);
                if let Some(slot) = out.get_mut(next) {
                    *slot = low.saturating_add(width / 2).clamp(self.min(), self.max);
                }
                next += 1;
            }
        }
        for slot in out.iter_mut().skip(next) {
            *slot = self.max;
        }
        out
    }

    /// Counts per bucket as `(inclusive upper bound, count)`, ascending; for
    /// exporting cumulative histograms.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets.iter().map(|&(index, n)| {
            let (low, width) = bucket_bounds(index, self.precision);
            (low.saturating_add(width - 1), n)
        })
    }

    /// Adds `other`'s counts (a histogram of the same precision) to these.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(i, n)), Some(&&(j, m))) if i == j => {
                    merged.push((i, n + m));
                    a.next();
                    b.next();
                }
                (Some(&&(i, n)), Some(&&(j, _))) if i < j => {
                    merged.push((i, n));
                    a.next();
                }
                (_, Some(&&(j, m))) => {
                    merged.push((j, m));
                    b.next();
                }
                (Some(&&(i, n)), None) => {
                    merged.push((i, n));
                    a.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// What was recorded after `earlier` (a snapshot of the same histogram).
    /// Min and max are those of the whole history, since buckets cannot say more.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut old = earlier.buckets.iter().peekable();
        let mut count = 0;
        for &(index, n) in &self.buckets {
            while old.peek().is_some_and(|(i, _)| *i < index) {
                old.next();
            }
            let before = match old.peek() {
                Some(&&(i, m)) if i == index => m,
                _ => 0,
            };
            let delta = n.saturating_sub(before);
            if delta > 0 {
                buckets.push((index, delta));
                count += delta;
            }
        }
        HistogramSnapshot {
            precision: self.precision,
            count,
            sum: self.sum.wrapping_sub(earlier.sum),
            min: self.min,
            max: self.max,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn quantiles_within_one_percent_of_exact() {
        let mut rng = fastrand::Rng::with_seed(7);
        // Fewer values under Miri, where each record takes microseconds.
        let n = if cfg!(miri) { 2_000 } else { 50_000 };
        for precision in [PRECISE, 6] {
            let h = AtomicHistogram::new(precision);
            let mut values: Vec<u64> = (0..n)
                .map(|_| {
                    let magnitude = rng.u32(0..40);
                    rng.u64(0..=(1u64 << magnitude))
                })
                .collect();
            for &v in &values {
                h.record(v);
            }
            values.sort_unstable();
            let s = h.snapshot();
            assert_eq!(s.count(), values.len() as u64);
            let many = s.quantiles([0.5, 0.9, 0.99]);
            assert_eq!(many, [s.quantile(0.5), s.quantile(0.9), s.quantile(0.99)]);
            for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let want = exact(&values, q) as f64;
                let got = s.quantile(q) as f64;
                let err = if want == 0.0 {
                    got
                } else {
                    (got - want).abs() / want
                };
                assert!(err <= 0.01, "p{q}: got {got}, want {want}, error {err}");
            }
            assert_eq!(s.min(), values[0]);
            assert_eq!(s.max(), *values.last().unwrap());
        }
    }

    #[test]
    fn every_value_lands_in_its_bucket() {
        for precision in [1, COARSE, PRECISE] {
            for v in (0..5000u64).chain([u64::MAX, u64::MAX - 1, 1 << 40, (1 << 40) - 1]) {
                let (g, s) = locate(v, precision);
                assert!(g < group_count(precision));
                let index = ((g << precision) | s) as u32;
                let (low, width) = bucket_bounds(index, precision);
                assert!(low <= v && v - low < width, "v={v} low={low} width={width}");
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "100,000 records: minutes under Miri")]
    fn memory_is_bounded_whatever_is_recorded() {
        let h = AtomicHistogram::new(PRECISE);
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100_000 {
            h.record(rng.u64(..));
        }
        let full = h.allocated_bytes();
        for _ in 0..100_000 {
            h.record(rng.u64(..));
        }
        assert_eq!(h.allocated_bytes(), full);
        assert!(full <= (65 - 7) * 128 * 8 + 58 * size_of_cell());
    }

    #[test]
    fn since_subtracts_an_earlier_snapshot() {
        let h = AtomicHistogram::new(COARSE);
        h.record_n(10, 5);
        let first = h.snapshot();
        h.record_n(1000, 3);
        h.record(10);
        let whole = h.snapshot();
        let estimate = whole.estimated_sum();
        assert!((estimate - whole.sum() as f64).abs() / (whole.sum() as f64) < 0.04);
        let delta = whole.since(&first);
        assert_eq!(delta.count(), 4);
        assert_eq!(delta.sum(), 3010);
        let empty = AtomicHistogram::new(COARSE).snapshot();
        assert_eq!(empty.quantile(0.5), 0);
        assert_eq!(empty.mean(), 0.0);
    }

    #[test]
    fn merge_equals_recording_into_one() {
        let (a, b, both) = (
            AtomicHistogram::new(COARSE),
            AtomicHistogram::new(COARSE),
            AtomicHistogram::new(COARSE),
        );
        for v in [1u64, 5, 900, 70_000] {
            a.record(v);
            both.record(v);
        }
        for v in [5u64, 3, 1 << 30] {
            b.record(v);
            both.record(v);
        }
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged, both.snapshot());
        let mut empty = HistogramSnapshot::default();
        empty.merge(&b.snapshot());
        assert_eq!(empty, b.snapshot());
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        // Fewer under Miri, where each record takes microseconds.
        let per_thread: u64 = if cfg!(miri) { 250 } else { 25_000 };
        let h = std::sync::Arc::new(AtomicHistogram::new(COARSE));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        h.record(i * (t + 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 4 * per_thread);
        assert_eq!(s.buckets().map(|(_, n)| n).sum::<u64>(), 4 * per_thread);
    }
}
