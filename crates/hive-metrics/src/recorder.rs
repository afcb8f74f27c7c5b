//! [`HiveRecorder`]: the `metrics::Recorder`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hive_types::{HiveError, HiveResult};
use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_util::registry::Registry;

use crate::config::RecorderConfig;
use crate::series::HiveStorage;
use crate::snapshot::{self, Description, RateTracker, Snapshot, Source};
use crate::window::QuantileTracker;

/// Label added to the series that collects registrations beyond the
/// cardinality limit of a metric name.
pub const OVERFLOW_LABEL: &str = "hive_overflow";

/// Name collisions kept for [`HiveRecorder::collisions`].
const MAX_COLLISIONS: usize = 64;

/// A counter renamed because its exposition name was taken.
struct Collision {
    name: String,
    exposed_as: String,
    kept_as: String,
}

/// Label sets admitted per (kind, name), and counters renamed because
/// their exposition name was taken.
#[derive(Default)]
struct Admissions {
    counts: HashMap<(Kind, String), usize>,
    renames: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub(crate) struct Inner {
    pub(crate) config: RecorderConfig,
    pub(crate) registry: Registry<Key, HiveStorage>,
    cardinality: Mutex<Admissions>,
    pub(crate) overflowed: AtomicU64,
    /// Counters renamed because their exposition name was taken (latest
    /// `MAX_COLLISIONS` kept) and how many there were in all.
    collisions: Mutex<Vec<Collision>>,
    pub(crate) collided: AtomicU64,
    pub(crate) descriptions: Mutex<HashMap<String, Description>>,
    pub(crate) rates: Mutex<RateTracker>,
    pub(crate) windows: Mutex<QuantileTracker>,
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
static INSTALLED: Mutex<Option<HiveRecorder>> = Mutex::new(None);

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
                cardinality: Mutex::new(Admissions::default()),
                collisions: Mutex::new(Vec::new()),
                collided: AtomicU64::new(0),
                overflowed: AtomicU64::new(0),
                descriptions: Mutex::new(HashMap::new()),
                rates: Mutex::new(RateTracker::default()),
                windows: Mutex::new(QuantileTracker::default()),
                started: Instant::now(),
                config,
            }),
        }
    }

    /// Installs this recorder as the global `metrics` recorder.
    pub fn install(&self) -> HiveResult<()> {
        // Under the lock, so `installed` never misses a recorder that is
        // already global (two systems built at once).
        let mut installed = lock(&INSTALLED);
        metrics::set_global_recorder(self.clone()).map_err(|_| HiveError::AlreadySet {
            what: "the global metrics recorder (install once, at startup, or use metrics::with_local_recorder)",
        })?;
        *installed = Some(self.clone());
        Ok(())
    }

    /// The hive recorder installed as the global one, if one was (by
    /// [`install`](Self::install)).
    pub fn installed() -> Option<HiveRecorder> {
        lock(&INSTALLED).clone()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RecorderConfig {
        &self.inner.config
    }

    /// Every series now, with rates per second over the rate window.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        let mut snapshot = snapshot::take(&Source {
            registry: &inner.registry,
            rates: &inner.rates,
            windows: &inner.windows,
            rate_window: inner.config.rate_window,
            descriptions: &inner.descriptions,
            started: inner.started,
            config: &inner.config,
        });
        let collided = inner.collided.load(Ordering::Relaxed);
        if collided > 0 {
            snapshot.add_counter(
                "hive_metrics_name_collisions_total",
                collided,
                "Counters renamed <name>_collided because another counter had their Prometheus name",
            );
        }
        let skipped = lock(&inner.windows).skipped;
        if skipped > 0 {
            snapshot.add_counter(
                "hive_metrics_window_copies_skipped_total",
                skipped,
                "Histogram copies not kept for the quantile window because quantile_window_bytes was spent",
            );
        }
        snapshot
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

    /// Heap bytes held by the histogram copies behind the quantile window
    /// (at most [`RecorderConfig::quantile_window_bytes`]).
    pub fn window_bytes(&self) -> usize {
        lock(&self.inner.windows).bytes()
    }

    /// Counters that were renamed because another counter already had
    /// their Prometheus name (`jobs` and `jobs_total` both expose as
    /// `jobs_total`): the latest ones, as typed errors.
    pub fn collisions(&self) -> Vec<HiveError> {
        lock(&self.inner.collisions)
            .iter()
            .map(|c| HiveError::MetricNameCollision {
                name: c.name.clone(),
                exposed_as: c.exposed_as.clone(),
                kept_as: c.kept_as.clone(),
            })
            .collect()
    }

    /// The key to store under: `key` itself while its name has room for
    /// another label set, else the name's overflow series; a counter whose
    /// exposition name another counter has is renamed `<name>_collided`.
    fn admit(&self, kind: Kind, key: &Key, exists: impl Fn(&Key) -> bool) -> Key {
        let mut admissions = lock(&self.inner.cardinality);
        let Admissions { counts, renames } = &mut *admissions;
        let mut key = match renames.get(key.name()) {
            Some(to) if kind == Kind::Counter => {
                Key::from_parts(to.clone(), key.labels().cloned().collect::<Vec<_>>())
            }
            _ => key.clone(),
        };
        if exists(&key) {
            return key;
        }
        if kind == Kind::Counter && !counts.contains_key(&(kind, key.name().to_string())) {
            if let Some(renamed) = self.rename_if_taken(counts, &key) {
                renames.insert(key.name().to_string(), renamed.name().to_string());
                key = renamed;
            }
        }
        let used = counts.entry((kind, key.name().to_string())).or_insert(0);
        if *used < self.inner.config.cardinality_limit {
            *used += 1;
            return key;
        }
        self.inner.overflowed.fetch_add(1, Ordering::Relaxed);
        Key::from_parts(
            key.name().to_string(),
            vec![Label::new(OVERFLOW_LABEL, "true")],
        )
    }

    /// A new counter name whose `_total` spelling another counter has.
    fn rename_if_taken(&self, counts: &HashMap<(Kind, String), usize>, key: &Key) -> Option<Key> {
        let name = key.name();
        let other = match name.strip_suffix("_total") {
            Some(bare) => bare.to_string(),
            None => format!("{name}_total"),
        };
        if !counts.contains_key(&(Kind::Counter, other)) {
            return None;
        }
        let kept_as = format!("{}_collided", name.strip_suffix("_total").unwrap_or(name));
        let exposed_as = match name.ends_with("_total") {
            true => name.to_string(),
            false => format!("{name}_total"),
        };
        self.inner.collided.fetch_add(1, Ordering::Relaxed);
        let mut collisions = lock(&self.inner.collisions);
        if collisions.len() == MAX_COLLISIONS {
            collisions.remove(0);
        }
        collisions.push(Collision {
            name: name.to_string(),
            exposed_as,
            kept_as: kept_as.clone(),
        });
        let labels: Vec<Label> = key.labels().cloned().collect();
        Some(Key::from_parts(kept_as, labels))
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
