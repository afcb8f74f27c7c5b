//! Pool configuration and the auto-sizing rule.

use std::borrow::Cow;

use hive_types::{HiveError, HiveResult};

/// How a [`Pool`](crate::Pool) keeps objects.
///
/// `max_idle` is a hard bound on idle objects, per-thread caches included;
/// auto-sizing moves the *target* idle count between `min_idle` and
/// `max_idle` following the seed design's rule: above 80% utilisation the
/// target grows by 25%, below 25% it shrinks by 12%.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Name used as the `pool` label of the pool's metrics.
    pub name: Cow<'static, str>,
    /// Floor of the target idle count.
    pub min_idle: usize,
    /// Hard cap on idle objects (shared store and thread caches together).
    pub max_idle: usize,
    /// Target idle count before the first `maintain()`; clamped to
    /// `min_idle..=max_idle`.
    pub initial_target: usize,
    /// Objects created up front, so the first pulls hit.
    pub prefill: usize,
    /// A returned object retaining more heap bytes than this is shrunk, or
    /// dropped if it cannot shrink: a 10 MB string is not kept.
    pub max_retained_bytes: usize,
    /// Objects each thread keeps in front of the shared store (0 disables
    /// the thread caches; every operation then takes the store's lock).
    pub thread_cache: usize,
    /// Count hits, misses and returns per thread. Off saves about a
    /// nanosecond per operation; `stats()` then reports zeros for them.
    pub stats: bool,
    /// Utilisation above which `maintain()` grows the target.
    pub grow_above: f64,
    /// Utilisation below which `maintain()` shrinks the target.
    pub shrink_below: f64,
    /// Growth factor (1.25 = +25%).
    pub grow_factor: f64,
    /// Shrink factor (0.88 = -12%).
    pub shrink_factor: f64,
    /// Number of `maintain()` samples whose mean utilisation drives sizing.
    pub window: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            name: Cow::Borrowed("pool"),
            min_idle: 0,
            max_idle: 256,
            initial_target: 256,
            prefill: 0,
            max_retained_bytes: 1 << 20,
            thread_cache: 16,
            stats: true,
            grow_above: 0.80,
            shrink_below: 0.25,
            grow_factor: 1.25,
            shrink_factor: 0.88,
            window: 1,
        }
    }
}

impl PoolConfig {
    /// Defaults with a name and a cap on idle objects (also the initial target).
    pub fn new(name: impl Into<Cow<'static, str>>, max_idle: usize) -> Self {
        PoolConfig {
            name: name.into(),
            max_idle,
            initial_target: max_idle,
            ..Default::default()
        }
    }

    /// Sets `min_idle`.
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// Sets `initial_target`.
    pub fn initial_target(mut self, target: usize) -> Self {
        self.initial_target = target;
        self
    }

    /// Sets `prefill`.
    pub fn prefill(mut self, prefill: usize) -> Self {
        self.prefill = prefill;
        self
    }

    /// Sets `max_retained_bytes`.
    pub fn max_retained_bytes(mut self, bytes: usize) -> Self {
        self.max_retained_bytes = bytes;
        self
    }

    /// Sets `thread_cache`.
    pub fn thread_cache(mut self, objects: usize) -> Self {
        self.thread_cache = objects;
        self
    }

    /// Turns per-operation statistics on or off.
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = on;
        self
    }

    /// Sets the utilisation window (number of `maintain()` samples).
    pub fn window(mut self, samples: usize) -> Self {
        self.window = samples;
        self
    }

    /// Checks the values; the error names the field and the accepted range.
    pub fn validate(&self) -> HiveResult<()> {
        if self.min_idle > self.max_idle {
            return Err(HiveError::config("min_idle", "must be <= max_idle"));
        }
        if self.prefill > self.max_idle {
            return Err(HiveError::config("prefill", "must be <= max_idle"));
        }
        if self.max_idle > isize::MAX as usize / 2 {
            return Err(HiveError::config(
                "max_idle",
                "must be below isize::MAX / 2",
            ));
        }
        if !(0.0..=1.0).contains(&self.shrink_below)
            || !(0.0..=1.0).contains(&self.grow_above)
            || self.shrink_below >= self.grow_above
        {
            return Err(HiveError::config(
                "grow_above",
                "thresholds must satisfy 0 <= shrink_below < grow_above <= 1",
            ));
        }
        if !(self.grow_factor > 1.0 && self.grow_factor.is_finite()) {
            return Err(HiveError::config(
                "grow_factor",
                "must be a finite number > 1 (1.25 = +25%)",
            ));
        }
        if !(self.shrink_factor > 0.0 && self.shrink_factor < 1.0) {
            return Err(HiveError::config(
                "shrink_factor",
                "must be in (0, 1) (0.88 = -12%)",
            ));
        }
        if self.window == 0 {
            return Err(HiveError::config("window", "must be at least 1 sample"));
        }
        Ok(())
    }

    /// The starting target, within `min_idle..=max_idle` and at least `prefill`.
    pub(crate) fn start_target(&self) -> usize {
        self.initial_target
            .max(self.prefill)
            .clamp(self.min_idle, self.max_idle)
    }

    /// The auto-sizing rule: the next target idle count for `current` at
    /// mean utilisation `utilisation` (in use / (in use + idle)).
    ///
    /// Growth adds at least one object so a target of 0 can grow; the
    /// result is always within `min_idle..=max_idle`.
    ///
    /// ```
    /// use hive_mempool::PoolConfig;
    ///
    /// let c = PoolConfig::new("p", 1000).min_idle(10);
    /// assert_eq!(c.next_target(100, 0.9), 125); // +25%
    /// assert_eq!(c.next_target(100, 0.1), 88); // -12%
    /// assert_eq!(c.next_target(100, 0.5), 100); // between thresholds: unchanged
    /// assert_eq!(c.next_target(11, 0.0), 10); // never below min_idle
    /// ```
    pub fn next_target(&self, current: usize, utilisation: f64) -> usize {
        let next = if utilisation > self.grow_above {
            let grown = (current as f64 * self.grow_factor).ceil() as usize;
            grown.max(current.saturating_add(1))
        } else if utilisation < self.shrink_below {
            (current as f64 * self.shrink_factor).floor() as usize
        } else {
            current
        };
        next.clamp(self.min_idle, self.max_idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_follows_the_seed_design_exactly() {
        let c = PoolConfig::new("p", 10_000);
        assert_eq!(c.next_target(400, 0.81), 500);
        assert_eq!(c.next_target(400, 0.80), 400, "80% is not above 80%");
        assert_eq!(c.next_target(400, 0.25), 400, "25% is not below 25%");
        assert_eq!(c.next_target(400, 0.24), 352);
        assert_eq!(c.next_target(0, 1.0), 1, "an empty target can grow");
        assert_eq!(c.next_target(3, 0.9), 4);
        assert_eq!(c.next_target(9_000, 1.0), 10_000, "capped at max_idle");
    }

    #[test]
    fn validation_names_the_field() {
        let bad = PoolConfig::new("p", 4).min_idle(5);
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("min_idle"), "{err}");
        let bad = PoolConfig {
            shrink_below: 0.9,
            ..PoolConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = PoolConfig {
            grow_factor: 1.0,
            ..PoolConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("grow_factor"));
        assert!(PoolConfig::default().validate().is_ok());
    }

    #[test]
    fn start_target_is_clamped_and_covers_prefill() {
        let c = PoolConfig::new("p", 100).initial_target(500);
        assert_eq!(c.start_target(), 100);
        let c = PoolConfig::new("p", 100).initial_target(0).prefill(20);
        assert_eq!(c.start_target(), 20);
    }
}
