//! Regression alerts: compare measurements with a stored [`Baseline`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use hive_types::{HiveError, HiveResult};
use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// One stored figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineEntry {
    /// The value measured when the baseline was saved.
    pub value: f64,
    /// Whether larger is better (throughput) or worse (latency).
    pub higher_is_better: bool,
    /// Unit, for messages.
    #[serde(default)]
    pub unit: String,
}

/// Saved figures to compare later runs with (JSON on disk).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Name of the baseline.
    pub name: String,
    /// Figures by key.
    pub entries: BTreeMap<String, BaselineEntry>,
}

impl Baseline {
    /// An empty baseline.
    pub fn new(name: impl Into<String>) -> Self {
        Baseline {
            name: name.into(),
            entries: BTreeMap::new(),
        }
    }

    /// Adds or replaces a figure.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: f64,
        higher_is_better: bool,
        unit: &str,
    ) {
        self.entries.insert(
            key.into(),
            BaselineEntry {
                value,
                higher_is_better,
                unit: unit.into(),
            },
        );
    }

    /// The figures of a snapshot worth guarding: each counter's rate
    /// (`rate:<name>{labels}`, higher is better) and each histogram's p99
    /// (`p99:<name>{labels}`, lower is better).
    pub fn from_snapshot(name: impl Into<String>, snapshot: &Snapshot) -> Self {
        let mut baseline = Baseline::new(name);
        for (key, value, higher) in measurements(snapshot) {
            baseline.insert(key, value, higher, "");
        }
        baseline
    }

    /// The baseline as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a baseline from JSON.
    pub fn from_json(text: &str) -> HiveResult<Self> {
        serde_json::from_str(text).map_err(|e| HiveError::Payload {
            what: "baseline (JSON written by Baseline::save)",
            reason: e.to_string(),
        })
    }

    /// Writes the baseline to `path`.
    pub fn save(&self, path: &Path) -> HiveResult<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_json())?;
        Ok(())
    }

    /// Reads a baseline from `path`.
    pub fn load(path: &Path) -> HiveResult<Self> {
        Baseline::from_json(&std::fs::read_to_string(path)?)
    }
}

/// `(key, value, higher_is_better)` of a snapshot's guarded figures.
fn measurements(snapshot: &Snapshot) -> Vec<(String, f64, bool)> {
    let series = |name: &str, labels: &BTreeMap<String, String>| {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}{{{}}}", l.join(","))
    };
    let mut out = Vec::new();
    for c in &snapshot.counters {
        if let Some(rate) = c.rate_per_sec {
            out.push((format!("rate:{}", series(&c.name, &c.labels)), rate, true));
        }
    }
    for h in &snapshot.histograms {
        // The recent window's p99 once there is one: a regression shows
        // there long before it moves the whole run's.
        let p99 = match &h.window {
            Some(w) => (w.count > 0).then_some(w.p99),
            None => (h.count > 0).then_some(h.p99),
        };
        if let Some(p99) = p99 {
            out.push((format!("p99:{}", series(&h.name, &h.labels)), p99, false));
        }
    }
    out
}

/// When a difference from the baseline counts as a regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// A higher-is-better figure dropping by more than this fraction (0.10).
    pub throughput_drop: f64,
    /// A lower-is-better figure rising by more than this fraction (0.20).
    pub latency_rise: f64,
    /// Windows in a row the figure must be past its threshold (3).
    pub consecutive: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            throughput_drop: 0.10,
            latency_rise: 0.20,
            consecutive: 3,
        }
    }
}

impl Thresholds {
    /// Checks every field; [`RegressionDetector::new`] calls it.
    pub fn validate(&self) -> HiveResult<()> {
        if !(self.throughput_drop > 0.0 && self.throughput_drop < 1.0) {
            return Err(HiveError::config(
                "throughput_drop",
                format!("must be a fraction in (0, 1), not {}", self.throughput_drop),
            ));
        }
        if !(self.latency_rise > 0.0 && self.latency_rise.is_finite()) {
            return Err(HiveError::config(
                "latency_rise",
                format!("must be a fraction above 0, not {}", self.latency_rise),
            ));
        }
        if self.consecutive == 0 {
            return Err(HiveError::config(
                "consecutive",
                "must be at least 1 window",
            ));
        }
        Ok(())
    }
}

/// A figure past its threshold for `windows` windows in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The figure's key.
    pub key: String,
    /// Its baseline value.
    pub baseline: f64,
    /// The value now.
    pub current: f64,
    /// `current / baseline - 1`.
    pub change: f64,
    /// Whether larger was better (a drop) or worse (a rise).
    pub higher_is_better: bool,
    /// Consecutive windows past the threshold.
    pub windows: u32,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.higher_is_better {
            "dropped"
        } else {
            "rose"
        };
        write!(
            f,
            "regression: {} {what} {:+.1}% ({} -> {}) for {} window(s)",
            self.key,
            self.change * 100.0,
            self.baseline,
            self.current,
            self.windows
        )
    }
}

/// Watches measurements window after window against a [`Baseline`].
///
/// ```
/// use hive_metrics::{Baseline, RegressionDetector, Thresholds};
/// use std::collections::BTreeMap;
///
/// let mut base = Baseline::new("main");
/// base.insert("throughput", 1000.0, true, "msg/s");
/// let mut detector =
///     RegressionDetector::new(base, Thresholds { consecutive: 2, ..Default::default() })?;
/// let slow = BTreeMap::from([("throughput".to_string(), 800.0)]);
/// assert!(detector.observe(&slow).is_empty()); // one window is not enough
/// let alerts = detector.observe(&slow);
/// assert_eq!(alerts.len(), 1);
/// assert!(alerts[0].to_string().contains("dropped -20.0%"));
/// # Ok::<(), hive_metrics::HiveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegressionDetector {
    baseline: Baseline,
    thresholds: Thresholds,
    streaks: HashMap<String, u32>,
    fired: u64,
}

impl RegressionDetector {
    /// A detector for `baseline` with `thresholds`, once
    /// [`Thresholds::validate`] accepts them.
    pub fn new(baseline: Baseline, thresholds: Thresholds) -> HiveResult<Self> {
        thresholds.validate()?;
        Ok(RegressionDetector::build(baseline, thresholds))
    }

    fn build(baseline: Baseline, thresholds: Thresholds) -> Self {
        RegressionDetector {
            baseline,
            thresholds,
            streaks: HashMap::new(),
            fired: 0,
        }
    }

    /// Alerts raised so far.
    pub fn alerts_fired(&self) -> u64 {
        self.fired
    }

    /// One window of `current` figures (by baseline key); returns the alerts
    /// of figures that just reached `consecutive` windows past their
    /// threshold. Figures without a baseline are ignored.
    pub fn observe(&mut self, current: &BTreeMap<String, f64>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (key, entry) in &self.baseline.entries {
            let Some(&now) = current.get(key) else {
                continue;
            };
            let streak = self.streaks.entry(key.clone()).or_insert(0);
            let window = Window {
                key,
                baseline: entry.value,
                higher_is_better: entry.higher_is_better,
                now,
            };
            if let Judgement::Regressed(Some(alert)) = window.judge(&self.thresholds, streak) {
                alerts.push(alert);
            }
        }
        self.fired += alerts.len() as u64;
        count(&alerts);
        alerts
    }

    /// [`observe`](Self::observe) with the guarded figures of a snapshot.
    pub fn observe_snapshot(&mut self, snapshot: &Snapshot) -> Vec<Alert> {
        let current = measurements(snapshot)
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        self.observe(&current)
    }

    /// One comparison, no streaks: every figure of `current` past its
    /// threshold now (for benchmark runs compared with a saved baseline).
    pub fn compare(
        baseline: &Baseline,
        current: &BTreeMap<String, f64>,
        thresholds: &Thresholds,
    ) -> Vec<Alert> {
        let once = Thresholds {
            consecutive: 1,
            ..thresholds.clone()
        };
        RegressionDetector::build(baseline.clone(), once).observe(current)
    }
}

/// One figure's value in one window, beside its baseline.
pub(crate) struct Window<'a> {
    pub(crate) key: &'a str,
    pub(crate) baseline: f64,
    pub(crate) higher_is_better: bool,
    pub(crate) now: f64,
}

/// What one window says about a figure.
pub(crate) enum Judgement {
    /// Within the threshold: the streak starts again.
    Normal,
    /// Past it: the streak grew, and reached `consecutive` with the alert.
    Regressed(Option<Alert>),
}

impl Window<'_> {
    /// Whether the value is past `t`'s threshold from the baseline.
    fn regressed(&self, t: &Thresholds) -> bool {
        if self.higher_is_better {
            self.now < self.baseline * (1.0 - t.throughput_drop)
        } else {
            self.now > self.baseline * (1.0 + t.latency_rise)
        }
    }

    /// Advances the figure's `streak` of regressed windows; an alert comes
    /// once, when it reaches `t.consecutive`.
    pub(crate) fn judge(&self, t: &Thresholds, streak: &mut u32) -> Judgement {
        if !self.regressed(t) {
            *streak = 0;
            return Judgement::Normal;
        }
        *streak += 1;
        Judgement::Regressed((*streak == t.consecutive).then(|| Alert {
            key: self.key.to_string(),
            baseline: self.baseline,
            current: self.now,
            change: if self.baseline == 0.0 {
                0.0
            } else {
                self.now / self.baseline - 1.0
            },
            higher_is_better: self.higher_is_better,
            windows: *streak,
        }))
    }
}

/// Counts alerts in `hive_metrics_regression_alerts_total{figure}`.
pub(crate) fn count(alerts: &[Alert]) {
    for alert in alerts {
        metrics::counter!("hive_metrics_regression_alerts_total", "figure" => alert.key.clone())
            .increment(1);
    }
}
