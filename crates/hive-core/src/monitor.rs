//! The system's monitor: every tick it maintains the pools, samples and
//! scales the balancer, retries agent runs that found the balancer full,
//! records resident memory, and samples the recorder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hive_types::HiveResult;

use crate::system::{lock, SystemInner};

/// Most memory samples kept (one per tick: ten minutes at 100 ms).
const RSS_SAMPLES: usize = 6000;

pub(crate) struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // The last handle to the system may be dropped on the monitor
            // thread itself (during a tick): it then ends on its own.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

pub(crate) fn start(inner: &Arc<SystemInner>, interval: Duration) -> HiveResult<()> {
    let weak: Weak<SystemInner> = Arc::downgrade(inner);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    #[cfg(feature = "metrics")]
    let perf = inner
        .recorder
        .clone()
        .map(|r| hive_metrics::PerformanceMonitor::new(r, 600));
    let started = Instant::now();
    let thread = std::thread::Builder::new()
        .name("hive-system-monitor".into())
        .spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                std::thread::park_timeout(interval);
                let Some(inner) = weak.upgrade() else { return };
                tick(&inner, started);
                #[cfg(feature = "metrics")]
                if let Some(p) = &perf {
                    p.tick();
                }
            }
        })?;
    *lock(&inner.monitor) = Some(Monitor {
        stop,
        thread: Some(thread),
    });
    Ok(())
}

pub(crate) fn tick(inner: &SystemInner, started: Instant) {
    #[cfg(feature = "mempool")]
    if let Some(pools) = &inner.pools {
        pools.maintain();
    }
    #[cfg(feature = "mempool")]
    if let Some(batches) = &inner.batch_pool {
        batches.maintain();
    }
    inner.balancer.rebalance();
    inner.retry_backlog();
    if let Some(rss) = crate::procstat::resident_bytes() {
        let mut samples = lock(&inner.rss_samples);
        if samples.len() == RSS_SAMPLES {
            // Keep the shape of a long run: drop every other old sample.
            let kept: Vec<(f64, u64)> = samples.iter().copied().step_by(2).collect();
            *samples = kept;
        }
        samples.push((started.elapsed().as_secs_f64(), rss));
    }
}
