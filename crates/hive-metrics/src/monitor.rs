//! [`PerformanceMonitor`]: samples a recorder on an interval into a
//! bounded history and calls hooks each tick.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hive_types::{HiveError, HiveResult};

use crate::recorder::HiveRecorder;
use crate::snapshot::Snapshot;
use hive_types::sync::lock;

type Hook = Box<dyn FnMut(&Snapshot) + Send>;

struct Shared {
    recorder: HiveRecorder,
    history: Mutex<VecDeque<Snapshot>>,
    capacity: usize,
    hooks: Mutex<Vec<Hook>>,
    ticks: AtomicU64,
    stop: (Mutex<bool>, Condvar),
}

/// Samples a [`HiveRecorder`] every interval, keeps the last `capacity`
/// snapshots (for trend charts and reports) and calls registered hooks with
/// each one (hive-core drives pool maintenance this way).
///
/// ```
/// use hive_metrics::{HiveRecorder, PerformanceMonitor};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let monitor = PerformanceMonitor::new(HiveRecorder::new(), 60)?;
/// let ticks = Arc::new(AtomicUsize::new(0));
/// let seen = ticks.clone();
/// monitor.on_tick(move |_snapshot| { seen.fetch_add(1, Ordering::SeqCst); });
/// monitor.tick();
/// monitor.tick();
/// assert_eq!(ticks.load(Ordering::SeqCst), 2);
/// assert_eq!(monitor.history().len(), 2);
/// # Ok::<(), hive_metrics::HiveError>(())
/// ```
pub struct PerformanceMonitor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PerformanceMonitor {
    /// A monitor keeping `capacity` snapshots (at least 1), ticked by hand
    /// with [`tick`](Self::tick).
    pub fn new(recorder: HiveRecorder, capacity: usize) -> HiveResult<Self> {
        if capacity == 0 {
            return Err(HiveError::config("capacity", "must be at least 1 snapshot"));
        }
        Ok(PerformanceMonitor {
            shared: Arc::new(Shared {
                recorder,
                history: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
                capacity,
                hooks: Mutex::new(Vec::new()),
                ticks: AtomicU64::new(0),
                stop: (Mutex::new(false), Condvar::new()),
            }),
            thread: None,
        })
    }

    /// A monitor that ticks on its own thread every `interval` until dropped.
    pub fn start(recorder: HiveRecorder, interval: Duration, capacity: usize) -> HiveResult<Self> {
        let mut monitor = PerformanceMonitor::new(recorder, capacity)?;
        let shared = monitor.shared.clone();
        let thread = std::thread::Builder::new()
            .name("hive-perf-monitor".into())
            .spawn(move || loop {
                let (lock_, wake) = &shared.stop;
                let stopped = lock(lock_);
                let (stopped, _) = wake
                    .wait_timeout_while(stopped, interval, |s| !*s)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if *stopped {
                    return;
                }
                drop(stopped);
                tick(&shared);
            })?;
        monitor.thread = Some(thread);
        Ok(monitor)
    }

    /// Registers a hook called with every new snapshot, on the ticking thread.
    pub fn on_tick(&self, hook: impl FnMut(&Snapshot) + Send + 'static) {
        lock(&self.shared.hooks).push(Box::new(hook));
    }

    /// Samples now: stores the snapshot, runs the hooks, returns it.
    pub fn tick(&self) -> Snapshot {
        tick(&self.shared)
    }

    /// The stored snapshots, oldest first.
    pub fn history(&self) -> Vec<Snapshot> {
        lock(&self.shared.history).iter().cloned().collect()
    }

    /// The newest snapshot, if any.
    pub fn latest(&self) -> Option<Snapshot> {
        lock(&self.shared.history).back().cloned()
    }

    /// Ticks so far.
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }

    /// The recorder it samples.
    pub fn recorder(&self) -> &HiveRecorder {
        &self.shared.recorder
    }
}

fn tick(shared: &Shared) -> Snapshot {
    let snapshot = shared.recorder.snapshot();
    {
        let mut history = lock(&shared.history);
        if history.len() == shared.capacity {
            history.pop_front();
        }
        history.push_back(snapshot.clone());
    }
    for hook in lock(&shared.hooks).iter_mut() {
        hook(&snapshot);
    }
    shared.ticks.fetch_add(1, Ordering::Relaxed);
    snapshot
}

impl Drop for PerformanceMonitor {
    fn drop(&mut self) {
        let (lock_, wake) = &self.shared.stop;
        *lock(lock_) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for PerformanceMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerformanceMonitor")
            .field("ticks", &self.ticks())
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_the_thread_ticks() {
        let recorder = HiveRecorder::new();
        let monitor = PerformanceMonitor::new(recorder.clone(), 3).unwrap();
        for _ in 0..10 {
            monitor.tick();
        }
        assert_eq!(monitor.history().len(), 3);
        assert_eq!(monitor.ticks(), 10);
        let running = PerformanceMonitor::start(recorder, Duration::from_millis(5), 100).unwrap();
        while running.ticks() < 3 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(running); // stops and joins
    }
}
