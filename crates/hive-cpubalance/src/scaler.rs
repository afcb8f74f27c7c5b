//! The scaler: samples each worker's real busy time every interval and
//! scales the worker count.
//!
//! It adds a worker when every worker was busy (at least `scale_up_busy` of
//! the interval) and work is queued, or when work is queued and nothing
//! completed in the interval (tasks that block). It retires one after
//! `scale_down_after` intervals in a row with mean busy time under
//! `scale_down_busy`. The gap between the two thresholds keeps it from flapping.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::shared::{RunState, Shared};
use hive_types::sync::lock;

/// What one scaling step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDecision {
    /// A worker was started.
    Added,
    /// A worker was told to retire.
    Retired,
    /// The worker count stays.
    Kept,
}

/// One scaling step: sample busy time since the last step, then scale.
pub(crate) fn step(shared: &Arc<Shared>) -> ScaleDecision {
    let mut state = lock(&shared.scaler);
    let now = Instant::now();
    let now_ns = shared.nanos(now);
    let elapsed = state
        .last
        .map_or(0, |t| shared.nanos(now).saturating_sub(shared.nanos(t)));
    state.last = Some(now);
    let active = shared.active.load(Ordering::Acquire);
    let mut busiest_min = f64::INFINITY;
    let mut busy_sum = 0.0;
    for (i, worker) in shared.workers.iter().enumerate() {
        let total = worker.busy_total(now_ns);
        let before = state.last_busy.get(i).copied().unwrap_or(0);
        if let Some(b) = state.last_busy.get_mut(i) {
            *b = total;
        }
        let fraction = if elapsed == 0 {
            0.0
        } else {
            (total.saturating_sub(before) as f64 / elapsed as f64).min(1.0)
        };
        worker
            .sampled_load
            .store(fraction.to_bits(), Ordering::Relaxed);
        if i < active {
            busiest_min = busiest_min.min(fraction);
            busy_sum += fraction;
        }
    }
    let completed: u64 = shared
        .workers
        .iter()
        .map(|w| w.live.completed.load(Ordering::Relaxed))
        .sum();
    let completed_now = completed.saturating_sub(state.last_completed);
    state.last_completed = completed;
    if shared.run_state() != RunState::Running {
        return ScaleDecision::Kept;
    }
    let config = &shared.config;
    // Workers started for waits in `Balancer::blocking` retire once that
    // many are no longer needed to keep `min_workers` free.
    let free = active.saturating_sub(shared.blocked.load(Ordering::Acquire));
    if active > config.max_workers && free > config.min_workers && shared.retire_worker() {
        shared.scale_downs.fetch_add(1, Ordering::Relaxed);
        return ScaleDecision::Retired;
    }
    if elapsed == 0 {
        return ScaleDecision::Kept;
    }
    let queued = shared.total_queued();
    let all_busy = active > 0 && busiest_min >= config.scale_up_busy;
    let stalled = completed_now == 0 && queued > 0;
    if (all_busy && queued > 0 || stalled) && active < config.max_workers {
        state.idle_streak = 0;
        drop(state);
        return match crate::worker::add_worker(shared) {
            Ok(true) => {
                shared.scale_ups.fetch_add(1, Ordering::Relaxed);
                ScaleDecision::Added
            }
            _ => ScaleDecision::Kept,
        };
    }
    let mean = if active == 0 {
        0.0
    } else {
        busy_sum / active as f64
    };
    if mean < config.scale_down_busy && queued == 0 {
        state.idle_streak += 1;
        if state.idle_streak >= config.scale_down_after && shared.retire_worker() {
            state.idle_streak = 0;
            shared.scale_downs.fetch_add(1, Ordering::Relaxed);
            return ScaleDecision::Retired;
        }
    } else {
        state.idle_streak = 0;
    }
    ScaleDecision::Kept
}

/// The scaler thread: a step every interval until the balancer is gone.
pub(crate) fn spawn(shared: &Arc<Shared>) -> std::io::Result<()> {
    let Some(interval) = shared.config.scale_interval else {
        return Ok(());
    };
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let handle = std::thread::Builder::new()
        .name(format!("{}-scaler", shared.config.thread_name))
        .spawn(move || loop {
            std::thread::park_timeout(interval);
            let Some(shared) = weak.upgrade() else { return };
            if shared.run_state() != RunState::Running {
                return;
            }
            step(&shared);
            crate::stats::publish(&shared);
        })?;
    lock(&shared.threads).push(handle);
    Ok(())
}
