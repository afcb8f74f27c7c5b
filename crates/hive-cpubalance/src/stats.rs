//! [`BalancerStats`]: per-worker load and per-class counts, as a snapshot
//! and through the `metrics` facade (published each scaling step).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hive_types::histogram::HistogramSnapshot;
use hive_types::Priority;

use crate::shared::Shared;

/// One worker's figures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Slot index.
    pub index: usize,
    /// Whether it takes new work.
    pub active: bool,
    /// Fraction of the last scale interval it was busy (not parked). A
    /// worker that spins, or waits for a core, counts as busy here: see
    /// [`cpu_load`](Self::cpu_load) for the CPU it got.
    pub busy_fraction: f64,
    /// CPU time its current thread used (Linux; `None` elsewhere).
    pub cpu_time: Option<Duration>,
    /// How long its current thread has run (with `cpu_time`).
    pub thread_age: Option<Duration>,
    /// Tasks in its queues.
    pub queue_depth: usize,
    /// Tasks it ran.
    pub completed: u64,
    /// Tasks it took from other workers' queues.
    pub steals: u64,
}

/// One priority class's figures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class.
    pub priority: Priority,
    /// Tasks accepted.
    pub submitted: u64,
    /// Tasks run (including those that panicked).
    pub completed: u64,
    /// Submissions refused for lack of room.
    pub rejected: u64,
    /// Tasks accepted and cancelled unrun (`shutdown_now`, or the balancer
    /// dropped with work queued).
    pub cancelled: u64,
    /// Tasks waiting now.
    pub queued: usize,
    /// Time from submission to start, in nanoseconds.
    pub queue_wait_ns: HistogramSnapshot,
}

impl WorkerStats {
    /// CPU time over the life of its current thread: 1.0 is one core all
    /// the time. `None` when the platform does not say.
    pub fn cpu_load(&self) -> Option<f64> {
        let (cpu, age) = self.cpu_time.zip(self.thread_age)?;
        (!age.is_zero()).then(|| cpu.as_secs_f64() / age.as_secs_f64())
    }
}

impl ClassStats {
    /// Median queue wait in nanoseconds.
    pub fn wait_p50_ns(&self) -> u64 {
        self.queue_wait_ns.quantile(0.5)
    }

    /// 99th-percentile queue wait in nanoseconds.
    pub fn wait_p99_ns(&self) -> u64 {
        self.queue_wait_ns.quantile(0.99)
    }
}

/// A snapshot of a balancer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BalancerStats {
    /// Workers taking work now.
    pub active_workers: usize,
    /// Every worker slot that has run, active or not.
    pub workers: Vec<WorkerStats>,
    /// `Low`, `Normal`, `High`, `Critical`.
    pub classes: Vec<ClassStats>,
    /// Workers added by the scaler.
    pub scale_ups: u64,
    /// Workers retired by the scaler.
    pub scale_downs: u64,
    /// Tasks that panicked (their handles got the error).
    pub panics: u64,
}

impl BalancerStats {
    /// The figures of one class.
    pub fn class(&self, p: Priority) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.priority == p)
    }

    /// Tasks run, all classes.
    pub fn completed(&self) -> u64 {
        self.classes.iter().map(|c| c.completed).sum()
    }

    /// Tasks taken from another worker's queue.
    pub fn steals(&self) -> u64 {
        self.workers.iter().map(|w| w.steals).sum()
    }
}

pub(crate) fn snapshot(shared: &Shared) -> BalancerStats {
    let active = shared.active.load(Ordering::Acquire);
    let seen = shared
        .workers
        .iter()
        .filter(|w| w.index < active || w.live.completed.load(Ordering::Relaxed) > 0);
    let workers: Vec<WorkerStats> = seen
        .map(|w| {
            let cpu = w.cpu_time();
            WorkerStats {
                index: w.index,
                active: w.index < active,
                busy_fraction: f64::from_bits(w.sampled_load.load(Ordering::Relaxed)),
                queue_depth: w.load.queued.load(Ordering::Relaxed),
                completed: w.live.completed.load(Ordering::Relaxed),
                steals: w.live.steals.load(Ordering::Relaxed),
                cpu_time: cpu.map(|(c, _)| c),
                thread_age: cpu.map(|(_, a)| a),
            }
        })
        .collect();
    let classes = Priority::ALL
        .iter()
        .map(|&p| {
            let class = shared.class(p);
            let mut wait = HistogramSnapshot::default();
            let mut completed = 0;
            for w in shared.workers.iter() {
                wait.merge(&w.wait_ns[p].snapshot());
                completed += w.live.completed_by_class[p].load(Ordering::Relaxed);
            }
            ClassStats {
                priority: p,
                submitted: class.submitted.load(Ordering::Relaxed),
                completed,
                rejected: class.rejected.load(Ordering::Relaxed),
                cancelled: class.cancelled.load(Ordering::Relaxed),
                queued: class.queued.load(Ordering::Relaxed),
                queue_wait_ns: wait,
            }
        })
        .collect();
    BalancerStats {
        active_workers: active,
        workers,
        classes,
        scale_ups: shared.scale_ups.load(Ordering::Relaxed),
        scale_downs: shared.scale_downs.load(Ordering::Relaxed),
        panics: shared
            .workers
            .iter()
            .map(|w| w.live.panics.load(Ordering::Relaxed))
            .sum(),
    }
}

/// Publishes a snapshot through the `metrics` facade.
#[cfg(feature = "metrics")]
pub(crate) fn publish(shared: &Shared) {
    describe();
    let stats = snapshot(shared);
    metrics::gauge!("hive_cpu_active_workers").set(stats.active_workers as f64);
    metrics::counter!("hive_cpu_scale_ups_total").absolute(stats.scale_ups);
    metrics::counter!("hive_cpu_scale_downs_total").absolute(stats.scale_downs);
    metrics::counter!("hive_cpu_task_panics_total").absolute(stats.panics);
    for w in &stats.workers {
        let worker = w.index.to_string();
        metrics::gauge!("hive_cpu_worker_busy_ratio", "worker" => worker.clone())
            .set(w.busy_fraction);
        metrics::gauge!("hive_cpu_worker_queue_depth", "worker" => worker.clone())
            .set(w.queue_depth as f64);
        if let Some(cpu) = w.cpu_time {
            // A gauge, not a counter: a replaced thread starts from zero.
            metrics::gauge!("hive_cpu_worker_thread_cpu_seconds", "worker" => worker.clone())
                .set(cpu.as_secs_f64());
        }
        metrics::counter!("hive_cpu_worker_completed_total", "worker" => worker.clone())
            .absolute(w.completed);
        metrics::counter!("hive_cpu_worker_steals_total", "worker" => worker).absolute(w.steals);
    }
    for c in &stats.classes {
        let class = c.priority.as_str();
        metrics::counter!("hive_cpu_tasks_submitted_total", "class" => class).absolute(c.submitted);
        metrics::counter!("hive_cpu_tasks_completed_total", "class" => class).absolute(c.completed);
        metrics::counter!("hive_cpu_tasks_rejected_total", "class" => class).absolute(c.rejected);
        metrics::gauge!("hive_cpu_queued_tasks", "class" => class).set(c.queued as f64);
        metrics::gauge!("hive_cpu_queue_wait_p50_seconds", "class" => class)
            .set(c.wait_p50_ns() as f64 / 1e9);
        metrics::gauge!("hive_cpu_queue_wait_p99_seconds", "class" => class)
            .set(c.wait_p99_ns() as f64 / 1e9);
    }
}

#[cfg(feature = "metrics")]
fn describe() {
    metrics::describe_gauge!("hive_cpu_active_workers", "Workers taking work");
    metrics::describe_counter!("hive_cpu_scale_ups_total", "Workers added by the scaler");
    metrics::describe_counter!(
        "hive_cpu_scale_downs_total",
        "Workers retired by the scaler"
    );
    metrics::describe_counter!("hive_cpu_task_panics_total", "Tasks that panicked");
    metrics::describe_gauge!(
        "hive_cpu_worker_busy_ratio",
        "Fraction of the last scale interval the worker was busy (not parked)"
    );
    metrics::describe_gauge!(
        "hive_cpu_worker_thread_cpu_seconds",
        metrics::Unit::Seconds,
        "CPU time of the worker's current thread (Linux)"
    );
    metrics::describe_gauge!(
        "hive_cpu_worker_queue_depth",
        "Tasks in the worker's queues"
    );
    metrics::describe_counter!("hive_cpu_worker_completed_total", "Tasks the worker ran");
    metrics::describe_counter!(
        "hive_cpu_worker_steals_total",
        "Tasks the worker took from others"
    );
    metrics::describe_counter!("hive_cpu_tasks_submitted_total", "Tasks accepted, by class");
    metrics::describe_counter!("hive_cpu_tasks_completed_total", "Tasks run, by class");
    metrics::describe_counter!(
        "hive_cpu_tasks_rejected_total",
        "Submissions refused for lack of room, by class"
    );
    metrics::describe_gauge!("hive_cpu_queued_tasks", "Tasks waiting, by class");
    metrics::describe_counter!(
        "hive_cpu_tasks_cancelled_total",
        "Tasks accepted and cancelled unrun at shutdown, by class"
    );
    metrics::describe_gauge!(
        "hive_cpu_queue_wait_p50_seconds",
        metrics::Unit::Seconds,
        "Median time from submission to start, by class"
    );
    metrics::describe_gauge!(
        "hive_cpu_queue_wait_p99_seconds",
        metrics::Unit::Seconds,
        "99th-percentile time from submission to start, by class"
    );
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn publish(_shared: &Shared) {}
