//! [`HiveRecorder`]: the `metrics::Recorder`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hive_types::{HiveError, HiveResult};
use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::Registry;

use crate::config::RecorderConfig;
use crate::series::HiveStorage;
use crate::snapshot::{self, Description, RateTracker, Snapshot, Source};

/// Label added to the series that collects registrations beyond the
/// cardinality limit of a metric name.
pub const OVERFLOW_LABEL: &str = "hive_overflow";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub(crate) struct Inner {
    pub(crate) config: RecorderConfig,
    pub(crate) registry: Registry<Key, HiveStorage>,
    cardinality: Mutex<HashMap<(Kind, String), usize>>,
    pub(crate) overflowed: AtomicU64,
    pub(crate) descriptions: Mutex<HashMap<String, Description>>,
    pub(crate) rates: Mutex<RateTracker>,
    pub(crate) started: Instant,
}

use hive_types::sync::lock;

/// A `metrics` recorder that aggregates as samples arrive.
///
/// Counters and gauges are atomics; histograms are log-linear bucket
/// arrays (bounded memory, percentiles within 0.4% at the default
/// precision), so rendering never sorts raw samples. Cloning makes another
/// handle to the same recorder.
///
/// Use it globally with [`install`](Self::install), or locally (tests,
/// embedding) with `metrics::with_local_recorder(&recorder, || ...)`.
///
/// ```
/// use hive_metrics::HiveRecorder;
///
/// let recorder = HiveRecorder::new();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs_total", "queue" => "fast").increment(3);
///     metrics::histogram!("job_seconds").record(0.25);
/// });
/// let snap = recorder.snapshot();
/// assert_eq!(snap.counter("jobs_total").unwrap().value, 3);
/// assert!(recorder.render_prometheus().contains("jobs_total{queue=\"fast\"} 3"));
/// ```
#[derive(Clone)]
pub struct HiveRecorder {
    pub(crate) inner: Arc<Inner>,
}

/// The recorder [`HiveRecorder::install`] made global.
static INSTALLED: OnceLock<HiveRecorder> = OnceLock::new();

impl Default for HiveRecorder {
    fn default() -> Self {
        HiveRecorder::new()
    }
}

impl HiveRecorder {
    /// A recorder with the default configuration.
    pub fn new() -> Self {
        HiveRecorder::build(RecorderConfig::default())
    }

    /// A recorder with `config`, once [`RecorderConfig::validate`] accepts it.
    pub fn with_config(config: RecorderConfig) -> HiveResult<Self> {
        config.validate()?;
        Ok(HiveRecorder::build(config))
    }

    fn build(config: RecorderConfig) -> Self {
        let precision = config.precision;
        HiveRecorder {
            inner: Arc::new(Inner {
                registry: Registry::new(HiveStorage { precision }),
                cardinality: Mutex::new(HashMap::new()),
                overflowed: AtomicU64::new(0),
                descriptions: Mutex::new(HashMap::new()),
                rates: Mutex::new(RateTracker::default()),
                started: Instant::now(),
                config,
            }),
        }
    }

    /// Installs this recorder as the global `metrics` recorder.
    pub fn install(&self) -> HiveResult<()> {
        metrics::set_global_recorder(self.clone()).map_err(|_| HiveError::AlreadySet {
            what: "the global metrics recorder (install once, at startup, or use metrics::with_local_recorder)",
        })?;
        let _ = INSTALLED.set(self.clone());
        Ok(())
    }

    /// The hive recorder installed as the global one, if one was (by
    /// [`install`](Self::install)).
    pub fn installed() -> Option<HiveRecorder> {
        INSTALLED.get().cloned()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RecorderConfig {
        &self.inner.config
    }

    /// Every series now, with rates per second over the rate window.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        snapshot::take(&Source {
            registry: &inner.registry,
            rates: &inner.rates,
            rate_window: inner.config.rate_window,
            descriptions: &inner.descriptions,
            started: inner.started,
            config: &inner.config,
        })
    }

    /// The Prometheus text exposition format 0.0.4 of a fresh snapshot.
    pub fn render_prometheus(&self) -> String {
        crate::prometheus::render(&self.snapshot())
    }

    /// A fresh snapshot as JSON.
    pub fn render_json(&self) -> String {
        self.snapshot().to_json()
    }

    /// Registrations routed to overflow series because a metric name hit
    /// the cardinality limit.
    pub fn overflowed(&self) -> u64 {
        self.inner.overflowed.load(Ordering::Relaxed)
    }

    /// Heap bytes held by histogram buckets, all series.
    pub fn histogram_bytes(&self) -> usize {
        let mut bytes = 0;
        self.inner
            .registry
            .visit_histograms(|_, h| bytes += h.allocated_bytes());
        bytes
    }

    /// The key to store under: `key` itself while its name has room for
    /// another label set, else the name's overflow series.
    fn admit(&self, kind: Kind, key: &Key, exists: impl Fn(&Key) -> bool) -> Key {
        let mut counts = lock(&self.inner.cardinality);
        if exists(key) {
            return key.clone();
        }
        let used = counts.entry((kind, key.name().to_string())).or_insert(0);
        if *used < self.inner.config.cardinality_limit {
            *used += 1;
            return key.clone();
        }
        self.inner.overflowed.fetch_add(1, Ordering::Relaxed);
        Key::from_parts(
            key.name().to_string(),
            vec![Label::new(OVERFLOW_LABEL, "true")],
        )
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        lock(&self.inner.descriptions).insert(
            key.as_str().to_string(),
            Description {
                help: description.to_string(),
                unit,
            },
        );
    }
}

impl Recorder for HiveRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let registry = &self.inner.registry;
        if let Some(c) = registry.get_counter(key) {
            return Counter::from_arc(c);
        }
        let key = self.admit(Kind::Counter, key, |k| registry.get_counter(k).is_some());
        registry.get_or_create_counter(&key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let registry = &self.inner.registry;
        if let Some(g) = registry.get_gauge(key) {
            return Gauge::from_arc(g);
        }
        let key = self.admit(Kind::Gauge, key, |k| registry.get_gauge(k).is_some());
        registry.get_or_create_gauge(&key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let registry = &self.inner.registry;
        if let Some(h) = registry.get_histogram(key) {
            return Histogram::from_arc(h);
        }
        let key = self.admit(Kind::Histogram, key, |k| {
            registry.get_histogram(k).is_some()
        });
        registry.get_or_create_histogram(&key, |h| Histogram::from_arc(h.clone()))
    }
}

impl fmt::Debug for HiveRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HiveRecorder")
            .field("config", &self.inner.config)
            .field("overflowed", &self.overflowed())
            .finish_non_exhaustive()
    }
}
