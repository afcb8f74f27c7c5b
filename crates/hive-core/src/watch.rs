//! The live watch: every window (1 s by default) the ticker measures the
//! running system (throughput, latency, memory, CPU over that window),
//! keeps the figures in a bounded history, and feeds a
//! [`LiveWatch`](hive_metrics::LiveWatch) whose regression alerts go to
//! the `metrics` facade, to [`SwarmSystem::alerts`](crate::SwarmSystem::alerts)
//! and to the builder's [`on_alert`](crate::SwarmBuilder::on_alert) hook.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hive_metrics::{Alert, LiveWatch, WatchConfig};
use hive_types::histogram::HistogramSnapshot;
use hive_types::sync::lock;
use hive_types::HiveResult;

use crate::procstat;

/// Called with each alert, on the ticker's thread.
pub(crate) type AlertHook = Arc<dyn Fn(&Alert) + Send + Sync>;

/// Windows with fewer handled messages than this are not judged on
/// throughput (an idle system is not a slow one).
const MIN_MESSAGES: u64 = 100;

/// One window of the running system, as measured.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Window {
    /// When the window ended, in milliseconds since the Unix epoch.
    pub end_unix_ms: u64,
    /// Its length in seconds.
    pub secs: f64,
    /// Messages handled per second in the window.
    pub handled_per_sec: f64,
    /// Median creation-to-handling latency of the window's timed messages,
    /// in microseconds (`None`: no message was timed).
    pub latency_p50_us: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_us: Option<f64>,
    /// Resident memory at the window's end.
    pub rss_bytes: Option<u64>,
    /// Process CPU over the window, in cores (1.0: one core all the time).
    pub cpu_cores: Option<f64>,
}

/// How long a window is and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryConfig {
    pub(crate) window: Duration,
    pub(crate) windows: usize,
}

impl Default for HistoryConfig {
    /// One hour at one second.
    fn default() -> Self {
        HistoryConfig {
            window: Duration::from_secs(1),
            windows: 3600,
        }
    }
}

/// Where the current window started.
struct Mark {
    at: Instant,
    handled: u64,
    latency: HistogramSnapshot,
    cpu: Option<Duration>,
}

pub(crate) struct Watch {
    config: HistoryConfig,
    mark: Mutex<Option<Mark>>,
    history: Mutex<VecDeque<Window>>,
    live: Mutex<LiveWatch>,
    hook: Option<AlertHook>,
}

impl Watch {
    pub(crate) fn new(
        config: HistoryConfig,
        watch: WatchConfig,
        hook: Option<AlertHook>,
    ) -> HiveResult<Self> {
        Ok(Watch {
            config,
            mark: Mutex::new(None),
            history: Mutex::new(VecDeque::new()),
            live: Mutex::new(LiveWatch::new(watch)?),
            hook,
        })
    }

    #[cfg(feature = "http")]
    /// Length of a window, in seconds.
    pub(crate) fn window_secs(&self) -> f64 {
        self.config.window.as_secs_f64()
    }

    #[cfg(feature = "http")]
    /// Windows the history keeps.
    pub(crate) fn max_windows(&self) -> usize {
        self.config.windows
    }

    /// Windows kept now.
    pub(crate) fn history_len(&self) -> usize {
        lock(&self.history).len()
    }

    /// Bytes the history has allocated (its room, kept or not).
    pub(crate) fn history_bytes(&self) -> usize {
        lock(&self.history).capacity() * std::mem::size_of::<Window>()
    }

    /// Bytes the history holds at most (entries are fixed-size).
    pub(crate) fn max_history_bytes(&self) -> usize {
        self.config.windows * std::mem::size_of::<Window>()
    }

    /// Starts the first window (when the system starts).
    pub(crate) fn start(&self, handled: u64, latency: HistogramSnapshot) {
        *lock(&self.mark) = Some(Mark {
            at: Instant::now(),
            handled,
            latency,
            cpu: procstat::cpu_time(),
        });
    }

    /// Called every tick: once the window is long enough, reads the
    /// system's handled count and latency histogram and closes it.
    pub(crate) fn tick(
        &self,
        handled: impl FnOnce() -> u64,
        latency: impl FnOnce() -> HistogramSnapshot,
    ) {
        let now = Instant::now();
        let mut mark = lock(&self.mark);
        // Not started yet (`start` runs before the first tick), or the
        // window is still open.
        let Some(start) = mark
            .as_ref()
            .filter(|m| now.duration_since(m.at) >= self.config.window)
        else {
            return;
        };
        let (handled, latency, cpu) = (handled(), latency(), procstat::cpu_time());
        let secs = now.duration_since(start.at).as_secs_f64().max(1e-9);
        let in_window = latency.since(&start.latency);
        let timed = in_window.count() > 0;
        let [p50, p99] = in_window.quantiles([0.5, 0.99]);
        let messages = handled.saturating_sub(start.handled);
        let window = Window {
            end_unix_ms: unix_ms(),
            secs,
            handled_per_sec: messages as f64 / secs,
            latency_p50_us: timed.then_some(p50 as f64),
            latency_p99_us: timed.then_some(p99 as f64),
            rss_bytes: procstat::resident_bytes(),
            cpu_cores: cpu
                .zip(start.cpu)
                .map(|(now, then)| now.saturating_sub(then).as_secs_f64() / secs),
        };
        *mark = Some(Mark {
            at: now,
            handled,
            latency,
            cpu,
        });
        drop(mark);
        self.record(window, messages);
    }

    fn record(&self, window: Window, messages: u64) {
        {
            let mut history = lock(&self.history);
            if history.len() >= self.config.windows {
                history.pop_front();
            }
            if history.len() == history.capacity() {
                // Doubling, but never past the bound: a full history holds
                // room for exactly `windows` windows.
                let room = history
                    .capacity()
                    .max(4)
                    .min(self.config.windows.saturating_sub(history.len()).max(1));
                history.reserve_exact(room);
            }
            history.push_back(window);
        }
        let mut figures = Vec::with_capacity(3);
        if messages >= MIN_MESSAGES {
            figures.push(("throughput_per_sec", window.handled_per_sec, true));
        }
        if let Some(p99) = window.latency_p99_us {
            figures.push(("latency_p99_us", p99, false));
        }
        if let Some(rss) = window.rss_bytes {
            figures.push(("rss_bytes", rss as f64, false));
        }
        let alerts = lock(&self.live).observe(&figures);
        if let Some(hook) = &self.hook {
            for alert in &alerts {
                hook(alert);
            }
        }
    }

    /// The kept windows, oldest first.
    pub(crate) fn history(&self) -> Vec<Window> {
        lock(&self.history).iter().copied().collect()
    }

    /// The latest alerts, oldest first, and alerts raised in all.
    pub(crate) fn alerts(&self) -> (Vec<Alert>, u64) {
        let live = lock(&self.live);
        (live.recent(), live.alerts_fired())
    }

    #[cfg(feature = "http")]
    /// Each watched figure's learned baseline.
    pub(crate) fn baselines(&self) -> std::collections::BTreeMap<String, f64> {
        lock(&self.live).baselines()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(i: u64) -> Window {
        Window {
            end_unix_ms: i,
            secs: 1.0,
            handled_per_sec: 0.0,
            latency_p50_us: None,
            latency_p99_us: None,
            rss_bytes: None,
            cpu_cores: None,
        }
    }

    #[test]
    fn the_history_never_holds_room_past_its_bound() {
        for windows in [1, 5, 10, 100, 3600] {
            let config = HistoryConfig {
                window: Duration::from_secs(1),
                windows,
            };
            let watch = Watch::new(config, WatchConfig::default(), None).unwrap();
            for i in 0..(2 * windows as u64 + 7) {
                watch.record(window(i), 0);
                assert!(
                    watch.history_bytes() <= watch.max_history_bytes(),
                    "{windows}"
                );
            }
            assert_eq!(watch.history_len(), windows);
            assert_eq!(watch.history_bytes(), watch.max_history_bytes());
            let kept = watch.history();
            assert_eq!(
                kept.last().map(|w| w.end_unix_ms),
                Some(2 * windows as u64 + 6)
            );
        }
    }
}
