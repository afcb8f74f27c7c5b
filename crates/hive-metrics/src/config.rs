//! [`RecorderConfig`]: how a recorder keeps series and exposes histograms.

use std::time::Duration;

use hive_types::{HiveError, HiveResult};

/// How a [`HiveRecorder`](crate::HiveRecorder) keeps series.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderConfig {
    /// Label sets kept per metric name; registrations beyond it share one
    /// overflow series (label `hive_overflow="true"`), so an id used as a
    /// label cannot grow memory without end.
    pub cardinality_limit: usize,
    /// Histogram buckets per octave as a power of two (7: 0.4% error).
    pub precision: u8,
    /// Window over which snapshots compute rates per second.
    pub rate_window: Duration,
    /// Window the quantiles of a snapshot cover (default 60 s): see
    /// [`WindowQuantiles`](crate::WindowQuantiles). Counts, sums and
    /// Prometheus histograms stay cumulative.
    pub quantile_window: Duration,
    /// Heap bytes the past histogram copies behind the quantile window may
    /// take, all series together (default 16 MiB); beyond it a series'
    /// window goes stale (its span grows) and
    /// `hive_metrics_window_copies_skipped_total` counts the copies not kept.
    pub quantile_window_bytes: usize,
    /// Histograms exposed to Prometheus as histograms, with these bucket
    /// bounds, by name pattern (`*` at either end matches anything; the
    /// first match wins); the others are summaries. Default: names ending
    /// in `_seconds` get [`seconds_buckets`](RecorderConfig::seconds_buckets),
    /// so `histogram_quantile` works on latencies.
    pub histogram_buckets: Vec<(String, Vec<f64>)>,
}

impl RecorderConfig {
    /// Checks every field; [`HiveRecorder::with_config`](crate::HiveRecorder::with_config) calls it.
    pub fn validate(&self) -> HiveResult<()> {
        if self.cardinality_limit == 0 {
            return Err(HiveError::config("cardinality_limit", "must be at least 1"));
        }
        if !(1..=10).contains(&self.precision) {
            return Err(HiveError::config(
                "precision",
                format!(
                    "must be 1..=10 (buckets per octave as a power of two), not {}",
                    self.precision
                ),
            ));
        }
        if self.rate_window.is_zero() {
            return Err(HiveError::config("rate_window", "must be more than zero"));
        }
        if self.quantile_window.is_zero() {
            return Err(HiveError::config(
                "quantile_window",
                "must be more than zero",
            ));
        }
        for (pattern, bounds) in &self.histogram_buckets {
            let ascending = bounds.iter().zip(bounds.iter().skip(1)).all(|(a, b)| a < b);
            if bounds.is_empty() || !ascending || bounds.iter().any(|b| !b.is_finite()) {
                return Err(HiveError::config(
                    "histogram_buckets",
                    format!(
                        "bounds for {pattern:?} must be finite and ascending, and at least one"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Bucket bounds for durations in seconds: 100 µs to 10 s.
    pub fn seconds_buckets() -> Vec<f64> {
        vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ]
    }

    /// The bucket bounds for histogram `name`, if it is exposed as one.
    pub(crate) fn buckets_for(&self, name: &str) -> Option<&[f64]> {
        self.histogram_buckets
            .iter()
            .find(|(pattern, _)| matches(pattern, name))
            .map(|(_, bounds)| bounds.as_slice())
    }
}

/// `*suffix`, `prefix*`, `*part*` or an exact name.
fn matches(pattern: &str, name: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') => name.contains(rest.trim_end_matches('*')),
        (Some(suffix), _) => name.ends_with(suffix),
        (None, Some(prefix)) => name.starts_with(prefix),
        (None, None) => name == pattern,
    }
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            cardinality_limit: 1000,
            precision: hive_types::histogram::PRECISE,
            rate_window: Duration::from_secs(10),
            quantile_window: Duration::from_secs(60),
            quantile_window_bytes: 16 << 20,
            histogram_buckets: vec![("*_seconds".into(), RecorderConfig::seconds_buckets())],
        }
    }
}
