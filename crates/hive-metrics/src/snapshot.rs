//! [`Snapshot`]: every series at one moment, with rates and percentiles.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hive_types::sync::lock;
use metrics::{Key, Unit};
use metrics_util::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::keyed::SeriesMap;
use crate::series::{HiveStorage, SCALE};
use crate::window::WindowQuantiles;

/// Help text and unit given with `describe_*!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description {
    pub(crate) help: String,
    pub(crate) unit: Option<Unit>,
}

/// What a snapshot reads: a recorder's series, rate history and
/// descriptions.
pub(crate) struct Source<'a> {
    pub(crate) registry: &'a Registry<Key, HiveStorage>,
    pub(crate) rates: &'a Mutex<RateTracker>,
    pub(crate) windows: &'a Mutex<crate::window::QuantileTracker>,
    pub(crate) rate_window: Duration,
    pub(crate) descriptions: &'a Mutex<HashMap<String, Description>>,
    pub(crate) started: Instant,
    pub(crate) config: &'a crate::config::RecorderConfig,
}

/// Labels of a series, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// A counter's value and its rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterSample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Total so far.
    pub value: u64,
    /// Increase per second over the rate window (`None` until a window exists).
    pub rate_per_sec: Option<f64>,
}

/// A gauge's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Current value.
    pub value: f64,
}

/// A histogram summarised: count, extremes, mean and percentiles since it
/// was created, and percentiles over the recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Samples recorded.
    pub count: u64,
    /// Sum of the samples (from bucket midpoints: within the precision).
    pub sum: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean sample.
    pub mean: f64,
    /// Median, whole run.
    pub p50: f64,
    /// 95th percentile, whole run.
    pub p95: f64,
    /// 99th percentile, whole run.
    pub p99: f64,
    /// 99.9th percentile, whole run.
    pub p999: f64,
    /// Percentiles over the last
    /// [`quantile_window`](crate::RecorderConfig::quantile_window) (what
    /// Prometheus summaries show); `None` the first time a snapshot sees
    /// the series (then the whole run is the only window there is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowQuantiles>,
    /// Samples per second over the rate window (`None` until a window exists).
    pub rate_per_sec: Option<f64>,
    /// Samples below zero, recorded as zero.
    pub clamped_negative: u64,
    /// For a histogram exposed as one (see
    /// [`RecorderConfig::histogram_buckets`](crate::RecorderConfig)):
    /// `(upper bound, samples at or below it)`, cumulative, ascending;
    /// empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<(f64, u64)>,
}

/// Every series of a recorder at one moment. Serialises to the JSON served
/// at `/metrics.json`; the field names are a stable schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Wall-clock time of the snapshot, milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// Seconds since the recorder was created.
    pub uptime_secs: f64,
    /// Seconds the rates were computed over (0 before the first window).
    pub rate_window_secs: f64,
    /// Counters, sorted by name then labels.
    pub counters: Vec<CounterSample>,
    /// Gauges, sorted by name then labels.
    pub gauges: Vec<GaugeSample>,
    /// Histograms, sorted by name then labels.
    pub histograms: Vec<HistogramSummary>,
    /// Help texts given with `describe_*!`, by metric name.
    pub descriptions: BTreeMap<String, String>,
    /// Units given with `describe_*!` (`"seconds"`, `"bytes"`, ...), by
    /// metric name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<String, String>,
}

impl Snapshot {
    /// Adds a counter the recorder keeps itself, in name order.
    pub(crate) fn add_counter(&mut self, name: &str, value: u64, help: &str) {
        let at = self.counters.partition_point(|c| c.name.as_str() < name);
        self.counters.insert(
            at,
            CounterSample {
                name: name.to_string(),
                labels: Labels::new(),
                value,
                rate_per_sec: None,
            },
        );
        self.descriptions.insert(name.to_string(), help.to_string());
    }

    /// The first counter named `name` (any labels).
    pub fn counter(&self, name: &str) -> Option<&CounterSample> {
        self.counters.iter().find(|c| c.name == name)
    }

    /// The first gauge named `name` (any labels).
    pub fn gauge(&self, name: &str) -> Option<&GaugeSample> {
        self.gauges.iter().find(|g| g.name == name)
    }

    /// The first histogram named `name` (any labels).
    pub fn histogram(&self, name: &str) -> Option<&HistogramSummary> {
        self.histograms.iter().find(|h| h.name == name)
    }

    /// Sum of every counter named `name` across label sets.
    pub fn counter_total(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.value)
            .sum()
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

fn labels_of(key: &Key) -> Labels {
    key.labels()
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect()
}

/// Identity of a series for rate tracking: its kind and the key's
/// precomputed hash (no allocation per series per snapshot).
type SeriesId = (u8, u64);

fn series_id(kind: u8, key: &Key) -> SeriesId {
    (kind, key.get_hash())
}

/// Past counter values (and histogram counts) for rates over a window:
/// at most `SAMPLES` kept, spaced a tenth of the window apart.
#[derive(Debug, Default)]
pub(crate) struct RateTracker {
    samples: VecDeque<(Instant, SeriesMap<SeriesId, f64>)>,
}

const SAMPLES: usize = 11;

impl RateTracker {
    /// Rates of `now_values` against the oldest sample within `window`;
    /// keeps `now_values` as a sample if enough time passed.
    fn observe(
        &mut self,
        now: Instant,
        window: Duration,
        now_values: SeriesMap<SeriesId, f64>,
    ) -> (f64, SeriesMap<SeriesId, f64>) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            self.samples.pop_front();
        }
        let mut rates = SeriesMap::with_capacity_and_hasher(now_values.len(), Default::default());
        let mut span = 0.0;
        if let Some((t, base)) = self.samples.front() {
            span = now.duration_since(*t).as_secs_f64();
            if span > 0.0 {
                for (id, v) in &now_values {
                    let before = base.get(id).copied().unwrap_or(0.0);
                    rates.insert(*id, (v - before).max(0.0) / span);
                }
            }
        }
        let spacing = window / 10;
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= spacing)
        {
            self.samples.push_back((now, now_values));
            while self.samples.len() > SAMPLES {
                self.samples.pop_front();
            }
        }
        (span, rates)
    }
}

/// Orders series by name, then by their key's hash: a stable order that
/// keeps families together without comparing every label.
fn by_series(a: (&str, u64), b: (&str, u64)) -> std::cmp::Ordering {
    a.0.cmp(b.0).then(a.1.cmp(&b.1))
}

pub(crate) fn take(inner: &Source<'_>) -> Snapshot {
    let now = Instant::now();
    // Cumulative values by series, for the rate tracker.
    let mut current = SeriesMap::default();
    let counters = counters(inner, &mut current);
    let histograms = histograms(inner, now, &mut current);
    let (span, rates) = lock(inner.rates).observe(now, inner.rate_window, current);
    let counters = with_rates(counters, &rates, |c, r| c.rate_per_sec = r, |c| &c.name);
    let histograms = with_rates(histograms, &rates, |h, r| h.rate_per_sec = r, |h| &h.name);
    let (descriptions, units) = {
        let described = lock(inner.descriptions);
        let help = described
            .iter()
            .map(|(k, d)| (k.clone(), d.help.clone()))
            .collect();
        let units = described
            .iter()
            .filter_map(|(k, d)| Some((k.clone(), d.unit?.as_str().to_string())))
            .collect();
        (help, units)
    };
    Snapshot {
        taken_at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        uptime_secs: now.duration_since(inner.started).as_secs_f64(),
        rate_window_secs: span,
        counters,
        gauges: gauges(inner),
        histograms,
        descriptions,
        units,
    }
}

fn counters(
    inner: &Source<'_>,
    current: &mut SeriesMap<SeriesId, f64>,
) -> Vec<(SeriesId, CounterSample)> {
    let mut counters = Vec::new();
    inner.registry.visit_counters(|key, c| {
        let value = c.value();
        current.insert(series_id(b'c', key), value as f64);
        counters.push((
            series_id(b'c', key),
            CounterSample {
                name: key.name().to_string(),
                labels: labels_of(key),
                value,
                rate_per_sec: None,
            },
        ));
    });
    counters
}

fn gauges(inner: &Source<'_>) -> Vec<GaugeSample> {
    let mut gauges = Vec::new();
    inner.registry.visit_gauges(|key, g| {
        gauges.push((
            key.get_hash(),
            GaugeSample {
                name: key.name().to_string(),
                labels: labels_of(key),
                value: g.value(),
            },
        ));
    });
    gauges.sort_unstable_by(|a, b| by_series((&a.1.name, a.0), (&b.1.name, b.0)));
    gauges.into_iter().map(|(_, g)| g).collect()
}

fn histograms(
    inner: &Source<'_>,
    now: Instant,
    current: &mut SeriesMap<SeriesId, f64>,
) -> Vec<(SeriesId, HistogramSummary)> {
    let mut histograms = Vec::new();
    // A histogram described in seconds is matched as `<name>_seconds`,
    // the name it is exposed under.
    let in_seconds: std::collections::HashSet<String> = lock(inner.descriptions)
        .iter()
        .filter(|(_, d)| d.unit == Some(Unit::Seconds))
        .map(|(k, _)| k.clone())
        .collect();
    let mut windows = lock(inner.windows);
    let (window, window_bytes) = (
        inner.config.quantile_window,
        inner.config.quantile_window_bytes,
    );
    inner.registry.visit_histograms(|key, h| {
        let s = h.snapshot();
        current.insert(series_id(b'h', key), s.count() as f64);
        let unscale = |v: u64| v as f64 / SCALE;
        let recent = windows
            .observe(key.get_hash(), now, &s, window, window_bytes)
            .map(|(span, w)| {
                let [p50, p95, p99, p999] = w.quantiles([0.5, 0.95, 0.99, 0.999]).map(unscale);
                WindowQuantiles {
                    secs: span.as_secs_f64(),
                    count: w.count(),
                    p50,
                    p95,
                    p99,
                    p999,
                }
            });
        let sum = s.estimated_sum() / SCALE;
        let count = s.count();
        let [p50, p95, p99, p999] = s.quantiles([0.5, 0.95, 0.99, 0.999]).map(unscale);
        histograms.push((
            series_id(b'h', key),
            HistogramSummary {
                name: key.name().to_string(),
                labels: labels_of(key),
                count,
                sum,
                min: unscale(s.min()),
                max: unscale(s.max()),
                mean: if count == 0 { 0.0 } else { sum / count as f64 },
                p50,
                p95,
                p99,
                p999,
                window: recent,
                rate_per_sec: None,
                clamped_negative: h.negative(),
                buckets: inner
                    .config
                    .buckets_for(&match in_seconds.contains(key.name())
                        && !key.name().ends_with("_seconds")
                    {
                        true => format!("{}_seconds", key.name()),
                        false => key.name().to_string(),
                    })
                    .map(|bounds| cumulative(&s, bounds))
                    .unwrap_or_default(),
            },
        ));
    });
    histograms
}

/// Samples at or below each bound (in seconds or the metric's own unit),
/// from the fine buckets (each counted by its upper end: within the
/// recorder's precision).
fn cumulative(s: &hive_types::histogram::HistogramSnapshot, bounds: &[f64]) -> Vec<(f64, u64)> {
    let mut fine = s.buckets().peekable();
    let mut below = 0u64;
    bounds
        .iter()
        .map(|&bound| {
            let limit = bound * SCALE;
            while let Some(&(upper, n)) = fine.peek() {
                if upper as f64 > limit {
                    break;
                }
                below += n;
                fine.next();
            }
            (bound, below)
        })
        .collect()
}

/// Gives each sample its series' rate, then orders them by name and series.
fn with_rates<T>(
    mut samples: Vec<(SeriesId, T)>,
    rates: &SeriesMap<SeriesId, f64>,
    set_rate: impl Fn(&mut T, Option<f64>),
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    for (id, sample) in &mut samples {
        set_rate(sample, rates.get(id).copied());
    }
    samples.sort_unstable_by(|a, b| by_series((name(&a.1), a.0 .1), (name(&b.1), b.0 .1)));
    samples.into_iter().map(|(_, sample)| sample).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_use_the_oldest_sample_in_the_window() {
        let mut t = RateTracker::default();
        let start = Instant::now();
        let w = Duration::from_secs(10);
        let one = |v: f64| SeriesMap::from_iter([((b'c', 1u64), v)]);
        let (span, rates) = t.observe(start, w, one(0.0));
        assert_eq!((span, rates.len()), (0.0, 0));
        let (span, rates) = t.observe(start + Duration::from_secs(2), w, one(100.0));
        assert_eq!(span, 2.0);
        assert_eq!(rates[&(b'c', 1u64)], 50.0);
        // Past the window, old samples are dropped.
        let (span, rates) = t.observe(start + Duration::from_secs(30), w, one(400.0));
        assert_eq!((span, rates.len()), (0.0, 0));
    }
}
