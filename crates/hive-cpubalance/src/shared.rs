//! State shared by the balancer handle, its workers and its scaler:
//! class capacities, placement, and the run state.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use event_listener::Event;
use hive_types::{HiveError, HiveResult, PerPriority, Priority};

use crate::config::BalancerConfig;
use crate::gate::Gate;
pub(crate) use crate::gate::RunState;
use crate::slot::Worker;
use crate::task::Task;
use hive_types::sync::lock;

/// One priority class: its room and its counters.
pub(crate) struct Class {
    /// Tasks of this class waiting in any queue (bounded by capacity).
    pub(crate) queued: CachePadded<AtomicUsize>,
    pub(crate) submitted: CachePadded<AtomicU64>,
    pub(crate) rejected: AtomicU64,
    /// Tasks accepted and then cancelled unrun (shutdown_now, drop).
    pub(crate) cancelled: AtomicU64,
    pub(crate) capacity: usize,
    pub(crate) not_full: Event,
}

pub(crate) struct Shared {
    pub(crate) config: BalancerConfig,
    epoch: Instant,
    /// Every slot up to `max_workers + blocking_workers`; slots
    /// `0..active` take new work.
    pub(crate) workers: Box<[Arc<Worker>]>,
    pub(crate) active: CachePadded<AtomicUsize>,
    /// Workers waiting in `Balancer::blocking` now.
    pub(crate) blocked: AtomicUsize,
    /// Held while a worker is being added (by the scaler or a blocking
    /// section), so two never start one slot.
    pub(crate) adding: Mutex<()>,
    pub(crate) classes: PerPriority<Class>,
    /// `Critical` tasks wait here, seen by every worker before its own
    /// queue, so one runs as soon as any worker finishes its current task.
    critical: CachePadded<Mutex<VecDeque<Task>>>,
    critical_len: CachePadded<AtomicUsize>,
    /// The run state and the submissions in flight.
    gate: CachePadded<Gate>,
    pub(crate) sleepers: AtomicUsize,
    pub(crate) scale_ups: AtomicU64,
    pub(crate) scale_downs: AtomicU64,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) scaler: Mutex<ScalerState>,
    /// Next worker for round-robin placement (`load_aware: false`).
    next_worker: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: BalancerConfig) -> Arc<Self> {
        let classes = PerPriority::from_fn(|p| Class {
            queued: CachePadded::new(AtomicUsize::new(0)),
            submitted: CachePadded::new(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            capacity: config.queue_capacity[p],
            not_full: Event::new(),
        });
        let slots = config.max_workers.saturating_add(config.blocking_workers);
        let workers = (0..slots).map(|i| Arc::new(Worker::new(i))).collect();
        Arc::new(Shared {
            epoch: Instant::now(),
            workers,
            active: CachePadded::new(AtomicUsize::new(0)),
            blocked: AtomicUsize::new(0),
            adding: Mutex::new(()),
            classes,
            critical: CachePadded::new(Mutex::new(VecDeque::new())),
            critical_len: CachePadded::new(AtomicUsize::new(0)),
            gate: CachePadded::new(Gate::new()),
            sleepers: AtomicUsize::new(0),
            scale_ups: AtomicU64::new(0),
            scale_downs: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            scaler: Mutex::new(ScalerState::new(slots)),
            next_worker: AtomicUsize::new(0),
            config,
        })
    }

    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX / 2)
    }

    pub(crate) fn run_state(&self) -> RunState {
        self.gate.state()
    }

    /// Moves to `state` unless already further along; returns the old state.
    pub(crate) fn advance(&self, state: RunState) -> RunState {
        let old = self.gate.advance(state);
        for class in self.classes.values() {
            class.not_full.notify(usize::MAX);
        }
        old
    }

    pub(crate) fn class(&self, p: Priority) -> &Class {
        &self.classes[p]
    }

    /// Tasks waiting in all queues.
    pub(crate) fn total_queued(&self) -> usize {
        self.classes
            .values()
            .map(|c| c.queued.load(Ordering::Acquire))
            .sum()
    }

    /// How long an idle worker sleeps before looking around again.
    pub(crate) fn idle_park(&self) -> Duration {
        self.config
            .scale_interval
            .unwrap_or(Duration::from_millis(50))
    }

    /// Reserves room for one task of class `p`. On success the caller is
    /// inside the submission gate and must [`place`](Self::place) the task.
    #[inline]
    pub(crate) fn try_reserve(&self, p: Priority) -> HiveResult<()> {
        if !self.gate.enter() {
            return Err(HiveError::Closed { what: "balancer" });
        }
        let class = self.class(p);
        let mut used = class.queued.load(Ordering::Relaxed);
        loop {
            if used >= class.capacity {
                self.gate.leave();
                return Err(HiveError::Full {
                    what: "task queue",
                    capacity: class.capacity,
                });
            }
            match class.queued.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Whether a submission is between its run-state check and its
    /// placement.
    pub(crate) fn submissions_in_flight(&self) -> bool {
        self.gate.busy()
    }

    /// Waits (briefly: placing never blocks) until every submission that
    /// passed its run-state check has placed its task.
    pub(crate) fn wait_for_submissions(&self) {
        self.gate.wait_empty();
    }

    /// Reserves room, waiting until `deadline` (or for ever) when full;
    /// the duration is the caller's timeout, for the error.
    pub(crate) fn reserve_waiting(
        &self,
        p: Priority,
        deadline: Option<(Instant, Duration)>,
    ) -> HiveResult<()> {
        use event_listener::Listener;
        loop {
            let listener = match self.reserve_or_listen(p) {
                Ok(listener) => listener,
                Err(done) => return done,
            };
            match deadline {
                None => listener.wait(),
                Some((d, timeout)) => {
                    if listener.wait_deadline(d).is_none() {
                        return self.last_try(p, timeout);
                    }
                }
            }
        }
    }

    /// Reserves room from async code, awaiting it when full, until
    /// `give_up` (if any) completes.
    pub(crate) async fn reserve_async<G: std::future::Future<Output = ()>>(
        &self,
        p: Priority,
        give_up: Option<G>,
        timeout: Duration,
    ) -> HiveResult<()> {
        let mut give_up = std::pin::pin!(give_up);
        loop {
            let listener = match self.reserve_or_listen(p) {
                Ok(listener) => listener,
                Err(done) => return done,
            };
            let mut listener = std::pin::pin!(listener);
            let woken = std::future::poll_fn(|cx| {
                if listener.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(true);
                }
                let gave_up = give_up
                    .as_mut()
                    .as_pin_mut()
                    .is_some_and(|g| g.poll(cx).is_ready());
                if gave_up {
                    std::task::Poll::Ready(false)
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
            if !woken {
                return self.last_try(p, timeout);
            }
        }
    }

    /// Reserves room, or returns a listener registered before the last
    /// check (`Err` carries the final outcome when not full).
    fn reserve_or_listen(
        &self,
        p: Priority,
    ) -> Result<event_listener::EventListener, HiveResult<()>> {
        match self.try_reserve(p) {
            Err(HiveError::Full { .. }) => {}
            other => return Err(other),
        }
        let listener = self.class(p).not_full.listen();
        match self.try_reserve(p) {
            Err(HiveError::Full { .. }) => Ok(listener),
            other => Err(other),
        }
    }

    /// Out of patience: one more try, a timeout if still full.
    fn last_try(&self, p: Priority, timeout: Duration) -> HiveResult<()> {
        match self.try_reserve(p) {
            Err(HiveError::Full { .. }) => Err(HiveError::Timeout {
                what: "submit",
                after: timeout,
            }),
            other => other,
        }
    }

    /// A task of class `p` left its queue: its room is free again.
    #[inline]
    pub(crate) fn release_slot(&self, p: Priority) {
        let class = self.class(p);
        class.queued.fetch_sub(1, Ordering::AcqRel);
        class.not_full.notify(1);
    }

    /// Places a submitted task (its room reserved by
    /// [`try_reserve`](Self::try_reserve)) and leaves the submission gate.
    pub(crate) fn submit(&self, task: Task) {
        self.place(task);
        self.gate.leave();
    }

    /// Puts a task (whose room is reserved) on the better of two randomly
    /// chosen active workers, by the seed design's score over live counters.
    pub(crate) fn place(&self, task: Task) {
        if task.class == Priority::Critical {
            lock(&self.critical).push_back(task);
            self.critical_len.fetch_add(1, Ordering::SeqCst);
            self.wake_sleeper();
            return;
        }
        let mut task = Some(task);
        loop {
            let active = self
                .active
                .load(Ordering::Acquire)
                .clamp(1, self.workers.len().max(1));
            // The queue term compares a worker's queue with the mean over
            // the active workers (Critical tasks wait in their own queue).
            let waiting = self
                .total_queued()
                .saturating_sub(self.critical_len.load(Ordering::Relaxed));
            let share = waiting as f64 / active as f64;
            let (a, b) = if self.config.load_aware {
                (fastrand::usize(..active), fastrand::usize(..active))
            } else {
                let next = self.next_worker.fetch_add(1, Ordering::Relaxed) % active;
                (next, next)
            };
            let (Some(wa), Some(wb)) = (self.workers.get(a), self.workers.get(b)) else {
                return;
            };
            let (sa, sb) = (wa.score(share), wb.score(share));
            let pick = if sa < sb
                || (sa == sb
                    && wa.load.queued.load(Ordering::Relaxed)
                        <= wb.load.queued.load(Ordering::Relaxed))
            {
                wa
            } else {
                wb
            };
            {
                let mut queues = pick.queues();
                if !queues.accepting {
                    continue; // it is retiring; choose again
                }
                if let Some(t) = task.take() {
                    queues.push(t);
                }
                pick.load.queued.fetch_add(1, Ordering::AcqRel);
            }
            self.wake_for(pick);
            return;
        }
    }

    /// The oldest `Critical` task, if any (a load when there is none).
    #[inline]
    pub(crate) fn pop_critical(&self) -> Option<Task> {
        if self.critical_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let task = lock(&self.critical).pop_front()?;
        self.critical_len.fetch_sub(1, Ordering::AcqRel);
        Some(task)
    }

    /// Wakes `target` if it sleeps; if it is busy, wakes a sleeper to steal.
    fn wake_for(&self, target: &Worker) {
        if target.live.sleeping.load(Ordering::SeqCst) {
            target.unpark();
            return;
        }
        self.wake_sleeper();
    }

    /// Wakes one sleeping active worker, if any sleeps.
    fn wake_sleeper(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let active = self.active.load(Ordering::Acquire);
            if let Some(sleeper) = self
                .workers
                .iter()
                .take(active)
                .find(|w| w.live.sleeping.load(Ordering::SeqCst))
            {
                sleeper.unpark();
            }
        }
    }

    /// Stops placing work on the last active worker; it hands its queue back
    /// and exits.
    pub(crate) fn retire_worker(&self) -> bool {
        let active = self.active.load(Ordering::Acquire);
        if active <= self.config.min_workers {
            return false;
        }
        let Some(worker) = self.workers.get(active - 1) else {
            return false;
        };
        self.active.store(active - 1, Ordering::Release);
        worker.retire.store(true, Ordering::Release);
        worker.unpark();
        true
    }

    /// Cancels every queued task (their handles resolve as cancelled).
    pub(crate) fn cancel_queued(&self) -> usize {
        let mut cancelled = 0;
        let mut tasks = Vec::new();
        while let Some(task) = self.pop_critical() {
            tasks.push(task);
        }
        for worker in self.workers.iter() {
            let queued = worker.queues().drain();
            worker.load.queued.fetch_sub(queued.len(), Ordering::AcqRel);
            tasks.extend(queued);
        }
        for task in tasks {
            self.release_slot(task.class);
            self.class(task.class)
                .cancelled
                .fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("hive_cpu_tasks_cancelled_total", "class" => task.class.as_str())
                .increment(1);
            task.job.cancel();
            cancelled += 1;
        }
        cancelled
    }

    pub(crate) fn wake_all(&self) {
        for worker in self.workers.iter() {
            worker.unpark();
        }
    }
}

/// The scaler's memory between steps.
pub(crate) struct ScalerState {
    pub(crate) last: Option<Instant>,
    pub(crate) last_busy: Vec<u64>,
    pub(crate) last_completed: u64,
    pub(crate) idle_streak: u32,
}

impl ScalerState {
    pub(crate) fn new(slots: usize) -> Self {
        ScalerState {
            last: None,
            last_busy: vec![0; slots],
            last_completed: 0,
            idle_streak: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A balancer's shared state with `n` active slots and no threads.
    fn two_workers() -> Arc<Shared> {
        let shared = Shared::new(BalancerConfig::default().workers(2, 2));
        shared.active.store(2, Ordering::Release);
        shared
    }

    fn place_normal(shared: &Shared, n: usize) {
        for _ in 0..n {
            shared.try_reserve(Priority::Normal).unwrap();
            shared.submit(Task::noop(Priority::Normal, Instant::now()));
        }
    }

    fn set_load(w: &Worker, running: bool, sampled: f64, queued: usize) {
        w.load.running.store(running, Ordering::Relaxed);
        w.sampled_load.store(sampled.to_bits(), Ordering::Relaxed);
        w.load.queued.store(queued, Ordering::Relaxed);
    }

    #[test]
    fn the_queue_term_moves_with_the_queue_against_the_mean() {
        let w = Worker::new(0);
        set_load(&w, true, 0.8, 0);
        let empty = w.score(10.0);
        w.load.queued.store(10, Ordering::Relaxed);
        let at_mean = w.score(10.0);
        w.load.queued.store(100, Ordering::Relaxed);
        let far_above = w.score(10.0);
        assert!(empty < at_mean && at_mean < far_above);
        assert!((at_mean - empty - 0.3 * 10.0 / 21.0).abs() < 1e-9);
    }

    #[test]
    fn placement_avoids_a_long_queue_on_a_slightly_less_busy_worker() {
        let shared = two_workers();
        let (a, b) = (&shared.workers[0], &shared.workers[1]);
        // Both run a task; b was a little less busy but holds 100 tasks.
        // Two random choices of two workers: when they differ the better
        // one wins, so it gets about three quarters of the placements (one
        // quarter if the score ignored b's queue).
        let mut to_a = 0;
        for _ in 0..400 {
            set_load(a, true, 0.9, 0);
            set_load(b, true, 0.8, 100);
            shared
                .class(Priority::Normal)
                .queued
                .store(100, Ordering::Relaxed);
            place_normal(&shared, 1);
            to_a += a.load.queued.load(Ordering::Relaxed);
        }
        assert!(to_a >= 240, "{to_a} of 400 went to the short queue");
    }
}
