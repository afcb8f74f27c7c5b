//! The reference workload at a fixed offered rate (open loop): a pacer
//! hands tasks to the workers on a schedule, whatever the swarm does, and
//! the figures (CPU seconds per million messages, resident memory, the
//! latency of `Critical` tasks) are taken over a window at that rate. A
//! closed loop (the coordinator's window) measures capacity; this measures
//! what the same work costs at the same load, which is what the seed's
//! "-31% CPU" claim is about.
//!
//! Above capacity the pacer cannot keep its schedule: sends wait for room
//! (backpressure), so what was offered and what was delivered are both
//! reported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hive_core::{SwarmSystem, SyncContext};
use hive_types::{AgentId, HiveResult, Message, MessageId, MessageKind, Priority};

use crate::workload::{cycled, priority_of, worker};

/// What one open-loop run measured over its window.
#[derive(Debug, Clone)]
pub struct OpenLoopOutcome {
    /// Tasks per second the pacer was asked to offer.
    pub offered_tasks_per_sec: f64,
    /// Tasks the pacer got sent per second (below `offered` when sends
    /// waited for room).
    pub sent_tasks_per_sec: f64,
    /// Tasks completed per second.
    pub delivered_tasks_per_sec: f64,
    /// Process CPU seconds per million messages handled (an assignment and
    /// a result per task).
    pub cpu_s_per_million: f64,
    /// Resident memory at the window's end, MB.
    pub rss_mb: f64,
    /// Send-to-result time of `Critical` tasks in the window, p50 and p99,
    /// microseconds (0 when none completed).
    pub critical_p50_us: f64,
    /// See `critical_p50_us`.
    pub critical_p99_us: f64,
    /// `Critical` tasks completed in the window.
    pub critical_tasks: usize,
    /// Heap allocations per message handled in the window (with the
    /// counting allocator installed; 0 without).
    pub allocations_per_message: f64,
}

/// Send times of `Critical` tasks not yet completed, and the completed
/// ones' latencies (only `Critical` tasks: 1 in 100).
#[derive(Default)]
struct Critical {
    sent: HashMap<MessageId, Instant>,
    latencies_us: Vec<f64>,
}

/// Runs `workers` workers on `system` at `tasks_per_sec` for `warm_up`,
/// then measures for `window`.
pub fn run(
    system: &SwarmSystem,
    workers: usize,
    payloads: &[Bytes],
    tasks_per_sec: f64,
    warm_up: Duration,
    window: Duration,
) -> HiveResult<OpenLoopOutcome> {
    let done = Arc::new(AtomicU64::new(0));
    let critical: Arc<Mutex<Critical>> = Arc::default();
    let collector = {
        let (done, critical) = (done.clone(), critical.clone());
        system
            .agent()
            .spawn_sync(move |m: Message, _ctx: &mut SyncContext<'_>| {
                done.fetch_add(1, Ordering::Relaxed);
                if m.priority == Priority::Critical {
                    let mut c = critical.lock().unwrap();
                    if let Some(at) = m.correlation_id.and_then(|id| c.sent.remove(&id)) {
                        c.latencies_us.push(at.elapsed().as_secs_f64() * 1e6);
                    }
                }
            })?
    };
    let ids: Vec<AgentId> = (0..workers)
        .map(|_| {
            system
                .agent()
                .spawn_sync(|m: Message, ctx: &mut SyncContext<'_>| {
                    worker(m, ctx);
                })
                .map(|w| w.id())
        })
        .collect::<HiveResult<_>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let pacer = {
        let (stop, sent, critical) = (stop.clone(), sent.clone(), critical.clone());
        let (sender, from, payloads) = (system.sender(), collector.id(), payloads.to_vec());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * tasks_per_sec) as u64;
                if i >= due {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                while i < due && !stop.load(Ordering::Relaxed) {
                    let (Some(&to), Some(payload)) = (cycled(&ids, i), cycled(&payloads, i)) else {
                        return;
                    };
                    let task = Message::builder(from, to)
                        .kind(MessageKind::TaskAssigned)
                        .priority(priority_of(i))
                        .payload(payload.clone())
                        .build();
                    if task.priority == Priority::Critical {
                        critical
                            .lock()
                            .unwrap()
                            .sent
                            .insert(task.id, Instant::now());
                    }
                    if sender.send(task).is_err() {
                        return;
                    }
                    i += 1;
                    sent.store(i, Ordering::Relaxed);
                }
            }
        })
    };

    std::thread::sleep(warm_up);
    let before = system.report();
    let (done_before, sent_before) = (done.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));
    let allocations_before = crate::alloc::allocations();
    critical.lock().unwrap().latencies_us.clear();
    let started = Instant::now();
    std::thread::sleep(window);
    let after = system.report();
    let secs = started.elapsed().as_secs_f64();
    let (done_after, sent_after) = (done.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));
    let allocations = crate::alloc::allocations() - allocations_before;
    let mut latencies = std::mem::take(&mut critical.lock().unwrap().latencies_us);
    stop.store(true, Ordering::Relaxed);
    pacer.join().unwrap();

    let tasks = done_after - done_before;
    let cpu = after.cpu_seconds.unwrap_or(0.0) - before.cpu_seconds.unwrap_or(0.0);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(OpenLoopOutcome {
        offered_tasks_per_sec: tasks_per_sec,
        sent_tasks_per_sec: (sent_after - sent_before) as f64 / secs,
        delivered_tasks_per_sec: tasks as f64 / secs,
        cpu_s_per_million: cpu / ((2 * tasks).max(1) as f64 / 1e6),
        rss_mb: after.rss_bytes.unwrap_or(0) as f64 / 1e6,
        critical_p50_us: at(0.5),
        critical_p99_us: at(0.99),
        critical_tasks: latencies.len(),
        allocations_per_message: allocations as f64 / (2 * tasks).max(1) as f64,
    })
}
