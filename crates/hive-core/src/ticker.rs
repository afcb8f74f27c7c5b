//! The system's ticker: every tick it maintains the pools, samples and
//! scales the balancer, retries agent runs that found the balancer full,
//! records resident memory, closes the live watch's windows, runs the
//! watchdog, publishes per-agent figures and sends heartbeats.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hive_types::HiveResult;

use crate::inner::{SystemInner, Ticker};
use crate::lifecycle::LifecycleEvent;
use crate::supervision::AgentEventKind;
use hive_types::sync::lock;

/// Most memory samples kept (one per tick: ten minutes at 100 ms).
const RSS_SAMPLES: usize = 6000;

pub(crate) fn start(inner: &Arc<SystemInner>, interval: Duration) -> HiveResult<()> {
    let weak: Weak<SystemInner> = Arc::downgrade(inner);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let started = Instant::now();
    #[cfg(feature = "metrics")]
    if let Some(watch) = &inner.watch {
        watch.start(inner.handled(), inner.latency_us.snapshot());
    }
    let mut last_heartbeat = Instant::now();
    let thread = std::thread::Builder::new()
        .name("hive-system-ticker".into())
        .spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                std::thread::park_timeout(interval);
                let Some(inner) = weak.upgrade() else { return };
                tick(&inner, started);
                if let Some(every) = inner.heartbeat {
                    if last_heartbeat.elapsed() >= every {
                        last_heartbeat = Instant::now();
                        heartbeat(&inner);
                    }
                }
            }
        })?;
    *lock(&inner.ticker) = Some(Ticker {
        stop,
        thread: Some(thread),
    });
    Ok(())
}

pub(crate) fn tick(inner: &SystemInner, started: Instant) {
    let now_ms = inner.clock.tick();
    watch_agents(inner, now_ms);
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
    #[cfg(feature = "metrics")]
    if let Some(watch) = &inner.watch {
        watch.tick(|| inner.handled(), || inner.latency_us.snapshot());
    }
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

/// The watchdog and per-agent figures: one pass over the running agents.
fn watch_agents(inner: &SystemInner, now_ms: u64) {
    let mut live = 0u64;
    for cell in inner.directory.all() {
        live += 1;
        if let (Some(w), Some(running)) = (cell.watchdog, cell.running_for(now_ms)) {
            if running >= w.limit && !cell.overrun_seen.swap(true, Ordering::AcqRel) {
                cell.counters.overruns.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("hive_agent_watchdog_overruns_total").increment(1);
                inner.emit(
                    &cell,
                    AgentEventKind::Overrun {
                        running,
                        cancelled: false,
                    },
                );
            }
        }
        if let Some(o) = &cell.observed {
            let handled = cell.counters.handled.load(Ordering::Relaxed);
            {
                let mut last = lock(&o.last);
                let dt = now_ms.saturating_sub(last.1);
                if dt > 0 && last.1 > 0 {
                    let rate = handled.saturating_sub(last.0) as f64 * 1000.0 / dt as f64;
                    o.per_sec.store(rate.to_bits(), Ordering::Relaxed);
                }
                *last = (handled, now_ms);
            }
            let label = o.label.to_string();
            metrics::gauge!("hive_agent_mailbox_depth", "agent" => label.clone())
                .set(cell.probe.depth() as f64);
            metrics::gauge!("hive_agent_lag_seconds", "agent" => label)
                .set(cell.probe.lag().as_secs_f64());
        }
    }
    metrics::gauge!("hive_agents_running").set(live as f64);
}

/// Tells lifecycle subscribers the system is alive.
fn heartbeat(inner: &SystemInner) {
    inner.subscribers.notify(
        &inner.outside,
        None,
        &LifecycleEvent::Heartbeat {
            agents: inner.directory.len() as u64,
            handled: inner.handled(),
        },
    );
}
