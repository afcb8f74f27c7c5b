//! Per-thread counters summed on read, and the [`PoolStats`] snapshot.
//!
//! Each thread writes only its own counters, with a relaxed load and store
//! (a plain add, no locked instruction), so statistics cost the hot path
//! well under a nanosecond and two threads never share a counter's cache line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters written by one thread only.
#[derive(Debug, Default)]
pub(crate) struct ThreadStats {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) returns: AtomicU64,
    pub(crate) discards: AtomicU64,
    pub(crate) detached: AtomicU64,
    /// Mirror of this thread's cached object count and bytes, for `stats()`.
    pub(crate) cached: AtomicU64,
    pub(crate) cached_bytes: AtomicU64,
}

/// Adds one to a counter only its owning thread writes.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

/// Event totals summed over threads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) returns: u64,
    pub(crate) discards: u64,
    pub(crate) detached: u64,
    pub(crate) cached: u64,
    pub(crate) cached_bytes: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, t: &ThreadStats) {
        self.hits += t.hits.load(Relaxed);
        self.misses += t.misses.load(Relaxed);
        self.returns += t.returns.load(Relaxed);
        self.discards += t.discards.load(Relaxed);
        self.detached += t.detached.load(Relaxed);
        self.cached += t.cached.load(Relaxed);
        self.cached_bytes += t.cached_bytes.load(Relaxed);
    }

    /// Objects handed out and not yet back.
    pub(crate) fn in_use(&self) -> u64 {
        (self.hits + self.misses).saturating_sub(self.returns + self.detached)
    }
}

/// A snapshot of one pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// Pulls served by a reused object.
    pub hits: u64,
    /// Pulls that had to create an object.
    pub misses: u64,
    /// Objects given back (kept or discarded).
    pub returns: u64,
    /// Given-back objects dropped: oversized, over the idle bound, or the
    /// pool was closed.
    pub discards: u64,
    /// Objects taken out of the pool for good (`detach`).
    pub detached: u64,
    /// `hits / (hits + misses)`, 1.0 before any pull.
    pub hit_ratio: f64,
    /// Objects handed out and not yet back.
    pub in_use: u64,
    /// Highest `in_use` seen by `stats()` and `maintain()` samples.
    pub peak_in_use: u64,
    /// Idle objects: shared store plus every thread's cache.
    pub idle: u64,
    /// Current target idle count (auto-sized).
    pub target: u64,
    /// Hard cap on idle objects.
    pub max_idle: u64,
    /// Heap bytes retained by idle objects (from their capacities).
    pub bytes_retained: u64,
}

impl PoolStats {
    /// `in_use / (in_use + idle)`, 0 when both are 0.
    pub fn utilisation(&self) -> f64 {
        let total = self.in_use + self.idle;
        if total == 0 {
            0.0
        } else {
            self.in_use as f64 / total as f64
        }
    }
}

pub(crate) fn hit_ratio(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 {
        1.0
    } else {
        hits as f64 / (hits + misses) as f64
    }
}

/// Publishes a snapshot through the `metrics` facade, labelled by pool name.
#[cfg(feature = "metrics")]
pub(crate) fn publish(stats: &PoolStats) {
    describe();
    let pool = stats.name.clone();
    metrics::counter!("hive_pool_hits_total", "pool" => pool.clone()).absolute(stats.hits);
    metrics::counter!("hive_pool_misses_total", "pool" => pool.clone()).absolute(stats.misses);
    metrics::counter!("hive_pool_returns_total", "pool" => pool.clone()).absolute(stats.returns);
    metrics::counter!("hive_pool_discards_total", "pool" => pool.clone()).absolute(stats.discards);
    if stats.hits + stats.misses > 0 {
        // An unused pool has no hit ratio: no gauge rather than a made-up 1.0.
        metrics::gauge!("hive_pool_hit_ratio", "pool" => pool.clone()).set(stats.hit_ratio);
    }
    metrics::gauge!("hive_pool_in_use", "pool" => pool.clone()).set(stats.in_use as f64);
    metrics::gauge!("hive_pool_peak_in_use", "pool" => pool.clone()).set(stats.peak_in_use as f64);
    metrics::gauge!("hive_pool_idle", "pool" => pool.clone()).set(stats.idle as f64);
    metrics::gauge!("hive_pool_target", "pool" => pool.clone()).set(stats.target as f64);
    metrics::gauge!("hive_pool_retained_bytes", "pool" => pool).set(stats.bytes_retained as f64);
}

#[cfg(feature = "metrics")]
fn describe() {
    metrics::describe_counter!("hive_pool_hits_total", "Pulls served by a reused object");
    metrics::describe_counter!("hive_pool_misses_total", "Pulls that created an object");
    metrics::describe_counter!("hive_pool_returns_total", "Objects given back");
    metrics::describe_counter!(
        "hive_pool_discards_total",
        "Given-back objects dropped (oversized, over the idle bound, pool closed)"
    );
    metrics::describe_gauge!("hive_pool_hit_ratio", "Hits / (hits + misses)");
    metrics::describe_gauge!("hive_pool_in_use", "Objects handed out and not yet back");
    metrics::describe_gauge!("hive_pool_peak_in_use", "Highest in-use count sampled");
    metrics::describe_gauge!(
        "hive_pool_idle",
        "Idle objects in the store and thread caches"
    );
    metrics::describe_gauge!("hive_pool_target", "Auto-sized target of idle objects");
    metrics::describe_gauge!(
        "hive_pool_retained_bytes",
        metrics::Unit::Bytes,
        "Heap bytes retained by idle objects"
    );
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn publish(_stats: &PoolStats) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_is_pulls_minus_returns_and_detaches() {
        let t = Totals {
            hits: 7,
            misses: 3,
            returns: 6,
            detached: 1,
            ..Totals::default()
        };
        assert_eq!(t.in_use(), 3);
        assert_eq!(hit_ratio(0, 0), 1.0);
        assert_eq!(hit_ratio(99, 1), 0.99);
    }

    #[test]
    fn bump_adds_one() {
        let c = AtomicU64::new(41);
        bump(&c);
        assert_eq!(c.load(Relaxed), 42);
    }
}
