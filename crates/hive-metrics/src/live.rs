//! [`LiveWatch`]: regression alerts on a running system, window after
//! window, against a baseline learned from its own recent windows.

use std::collections::{BTreeMap, VecDeque};

use hive_types::{HiveError, HiveResult};

use crate::regression::{count, Alert, Judgement, Thresholds, Window};

/// How a [`LiveWatch`] learns its baseline and when it raises alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// When a window counts as regressed, and for how many in a row before
    /// an alert.
    pub thresholds: Thresholds,
    /// Windows the baseline is the median of (30).
    pub baseline_windows: usize,
    /// Windows seen before any judgement (10): the baseline needs them.
    pub warmup_windows: usize,
    /// Alerts kept for [`LiveWatch::recent`] (64).
    pub keep_alerts: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            thresholds: Thresholds::default(),
            baseline_windows: 30,
            warmup_windows: 10,
            keep_alerts: 64,
        }
    }
}

impl WatchConfig {
    /// Checks every field; [`LiveWatch::new`] calls it.
    pub fn validate(&self) -> HiveResult<()> {
        self.thresholds.validate()?;
        if self.baseline_windows == 0 {
            return Err(HiveError::config("baseline_windows", "must be at least 1"));
        }
        if self.keep_alerts == 0 {
            return Err(HiveError::config("keep_alerts", "must be at least 1"));
        }
        if self.warmup_windows == 0 || self.warmup_windows > self.baseline_windows {
            return Err(HiveError::config(
                "warmup_windows",
                "must be at least 1 and at most baseline_windows",
            ));
        }
        Ok(())
    }
}

/// One figure's recent normal values and its current streak.
#[derive(Debug, Default)]
struct Figure {
    higher_is_better: bool,
    normal: VecDeque<f64>,
    streak: u32,
}

/// Watches a running system's figures (throughput, latency, memory, ...)
/// one window at a time. Each figure's baseline is the median of its
/// recent normal windows; a figure past its threshold for
/// `consecutive` windows raises one [`Alert`] (again only after it
/// recovered). Regressed windows do not enter the baseline, so a lasting
/// regression is not learned as the new normal.
///
/// A throughput figure drops when the offered load drops, too: with a
/// load that varies, watch latency and memory, or raise `throughput_drop`.
///
/// ```
/// use hive_metrics::{LiveWatch, WatchConfig};
///
/// let mut watch = LiveWatch::new(WatchConfig::default())?;
/// for _ in 0..20 {
///     assert!(watch.observe(&[("throughput", 1000.0, true)]).is_empty());
/// }
/// let mut alerts = Vec::new();
/// for _ in 0..3 {
///     alerts.extend(watch.observe(&[("throughput", 800.0, true)]));
/// }
/// assert_eq!(alerts.len(), 1, "20% below the usual 1000 for 3 windows");
/// # Ok::<(), hive_metrics::HiveError>(())
/// ```
#[derive(Debug)]
pub struct LiveWatch {
    config: WatchConfig,
    figures: BTreeMap<String, Figure>,
    recent: VecDeque<Alert>,
    fired: u64,
    windows: u64,
}

impl LiveWatch {
    /// A watch with `config`, once [`WatchConfig::validate`] accepts it.
    pub fn new(config: WatchConfig) -> HiveResult<Self> {
        config.validate()?;
        Ok(LiveWatch {
            config,
            figures: BTreeMap::new(),
            recent: VecDeque::new(),
            fired: 0,
            windows: 0,
        })
    }

    /// One window's figures: `(name, value, higher_is_better)`. Returns the
    /// alerts raised by this window. A figure missing from a window (no
    /// message was timed, say) is neither judged nor learned.
    pub fn observe(&mut self, window: &[(&str, f64, bool)]) -> Vec<Alert> {
        self.windows += 1;
        let mut alerts = Vec::new();
        for &(name, value, higher_is_better) in window {
            if !value.is_finite() {
                continue;
            }
            let figure = self
                .figures
                .entry(name.to_string())
                .or_insert_with(|| Figure {
                    higher_is_better,
                    ..Figure::default()
                });
            if let Some(alert) = judge(figure, name, value, &self.config) {
                alerts.push(alert);
            }
        }
        self.fired += alerts.len() as u64;
        for alert in &alerts {
            if self.recent.len() == self.config.keep_alerts {
                self.recent.pop_front();
            }
            self.recent.push_back(alert.clone());
        }
        count(&alerts);
        alerts
    }

    /// The latest alerts, oldest first (at most `keep_alerts`).
    pub fn recent(&self) -> Vec<Alert> {
        self.recent.iter().cloned().collect()
    }

    /// Alerts raised so far.
    pub fn alerts_fired(&self) -> u64 {
        self.fired
    }

    /// Windows observed so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Each figure's baseline now (the median of its normal windows), once
    /// it has one.
    pub fn baselines(&self) -> BTreeMap<String, f64> {
        self.figures
            .iter()
            .filter_map(|(name, f)| median(&f.normal).map(|m| (name.clone(), m)))
            .collect()
    }
}

/// Judges one figure's window once it has a baseline (the median of its
/// normal windows after warm-up): a normal window is learned.
fn judge(figure: &mut Figure, name: &str, value: f64, config: &WatchConfig) -> Option<Alert> {
    let baseline = (figure.normal.len() >= config.warmup_windows)
        .then(|| median(&figure.normal))
        .flatten();
    let judgement = match baseline {
        Some(baseline) => Window {
            key: name,
            baseline,
            higher_is_better: figure.higher_is_better,
            now: value,
        }
        .judge(&config.thresholds, &mut figure.streak),
        None => Judgement::Normal,
    };
    match judgement {
        Judgement::Regressed(alert) => alert,
        Judgement::Normal => {
            if figure.normal.len() == config.baseline_windows {
                figure.normal.pop_front();
            }
            figure.normal.push_back(value);
            None
        }
    }
}

fn median(values: &VecDeque<f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A figure around `mean` with up to ±1.5% of deterministic noise.
    fn noisy(mean: f64, i: u64) -> f64 {
        let wobble = ((i.wrapping_mul(2654435761) % 61) as f64 - 30.0) / 2000.0;
        mean * (1.0 + wobble)
    }

    /// A window of a system whose handlers take `slowdown` times as long:
    /// 1.25 is the 20% slowdown (throughput x 0.8, latency x 1.25).
    fn window(i: u64, slowdown: f64) -> Vec<(&'static str, f64, bool)> {
        vec![
            ("throughput", noisy(10_000.0, i) / slowdown, true),
            ("latency_p99_us", noisy(800.0, i + 7) * slowdown, false),
            ("rss_bytes", noisy(50e6, i + 13), false),
        ]
    }

    #[test]
    fn twenty_clean_windows_raise_nothing_and_a_20_percent_slowdown_does() {
        let mut watch = LiveWatch::new(WatchConfig::default()).unwrap();
        for i in 0..20 {
            assert!(watch.observe(&window(i, 1.0)).is_empty(), "window {i}");
        }
        let mut alerts = Vec::new();
        for i in 20..25 {
            alerts.extend(watch.observe(&window(i, 1.25)));
        }
        let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
        assert!(keys.contains(&"throughput"), "{alerts:?}");
        assert!(keys.contains(&"latency_p99_us"), "{alerts:?}");
        assert!(!keys.contains(&"rss_bytes"), "memory did not move");
        assert_eq!(alerts.len(), 2, "one alert per figure, not one per window");
        assert_eq!(watch.recent().len(), 2);
        // The regression was not learned: it still differs from the baseline.
        let base = watch.baselines()["throughput"];
        assert!((base - 10_000.0).abs() < 600.0, "baseline {base}");
        // Recovery resets the streak; a new regression alerts again.
        for i in 25..30 {
            assert!(watch.observe(&window(i, 1.0)).is_empty());
        }
        let again: usize = (30..33)
            .map(|i| watch.observe(&window(i, 1.25)).len())
            .sum();
        assert_eq!(again, 2);
    }

    #[test]
    fn nothing_is_judged_during_warm_up_and_bad_settings_are_refused() {
        let mut watch = LiveWatch::new(WatchConfig::default()).unwrap();
        for i in 0..5 {
            assert!(watch.observe(&window(i, 1.0)).is_empty());
        }
        // Five windows of baseline: a slowdown is learned, not judged.
        for i in 5..10 {
            assert!(watch.observe(&window(i, 3.0)).is_empty());
        }
        for bad in [
            WatchConfig {
                warmup_windows: 0,
                ..WatchConfig::default()
            },
            WatchConfig {
                keep_alerts: 0,
                ..WatchConfig::default()
            },
        ] {
            assert!(LiveWatch::new(bad).is_err());
        }
    }
}
