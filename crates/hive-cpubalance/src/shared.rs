//! State shared by the balancer handle, its workers and its monitor:
//! class capacities, placement, and the run state.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use event_listener::Event;
use hive_types::{HiveError, HiveResult, Priority};

use crate::config::BalancerConfig;
use crate::monitor::MonitorState;
use crate::task::Task;
use crate::worker::{self, Worker};

/// Whether the balancer takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running = 0,
    /// `shutdown`: no new work; everything queued still runs.
    Draining = 1,
    /// `shutdown_now` or drop: queued work is cancelled.
    Stopping = 2,
}

/// One priority class: its room and its counters.
pub(crate) struct Class {
    /// Tasks of this class waiting in any queue (bounded by capacity).
    pub(crate) queued: CachePadded<AtomicUsize>,
    pub(crate) submitted: CachePadded<AtomicU64>,
    pub(crate) rejected: AtomicU64,
    pub(crate) capacity: usize,
    pub(crate) not_full: Event,
}

pub(crate) struct Shared {
    pub(crate) config: BalancerConfig,
    epoch: Instant,
    /// Every slot up to `max_workers`; slots `0..active` take new work.
    pub(crate) workers: Box<[Arc<Worker>]>,
    pub(crate) active: CachePadded<AtomicUsize>,
    pub(crate) classes: [Class; 4],
    /// `Critical` tasks wait here, seen by every worker before its own
    /// queue, so one runs as soon as any worker finishes its current task.
    critical: CachePadded<Mutex<VecDeque<Task>>>,
    critical_len: CachePadded<AtomicUsize>,
    state: AtomicU8,
    pub(crate) sleepers: AtomicUsize,
    pub(crate) scale_ups: AtomicU64,
    pub(crate) scale_downs: AtomicU64,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) monitor: Mutex<MonitorState>,
    /// Sum of class capacities, for each worker's share in the score.
    total_capacity: usize,
    /// Next worker for round-robin placement (`load_aware: false`).
    next_worker: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: BalancerConfig) -> Arc<Self> {
        let classes = std::array::from_fn(|i| Class {
            queued: CachePadded::new(AtomicUsize::new(0)),
            submitted: CachePadded::new(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
            capacity: config.queue_capacity.get(i).copied().unwrap_or(1),
            not_full: Event::new(),
        });
        let workers = (0..config.max_workers)
            .map(|i| Arc::new(Worker::new(i)))
            .collect();
        let total_capacity = config.queue_capacity.iter().sum();
        Arc::new(Shared {
            epoch: Instant::now(),
            workers,
            active: CachePadded::new(AtomicUsize::new(0)),
            classes,
            critical: CachePadded::new(Mutex::new(VecDeque::new())),
            critical_len: CachePadded::new(AtomicUsize::new(0)),
            state: AtomicU8::new(RunState::Running as u8),
            sleepers: AtomicUsize::new(0),
            scale_ups: AtomicU64::new(0),
            scale_downs: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            monitor: Mutex::new(MonitorState::new(config.max_workers)),
            total_capacity,
            next_worker: AtomicUsize::new(0),
            config,
        })
    }

    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX / 2)
    }

    pub(crate) fn run_state(&self) -> RunState {
        match self.state.load(Ordering::Acquire) {
            0 => RunState::Running,
            1 => RunState::Draining,
            _ => RunState::Stopping,
        }
    }

    /// Moves to `state` unless already further along; returns the old state.
    pub(crate) fn advance(&self, state: RunState) -> RunState {
        let old = self.state.fetch_max(state as u8, Ordering::AcqRel);
        for class in &self.classes {
            class.not_full.notify(usize::MAX);
        }
        match old {
            0 => RunState::Running,
            1 => RunState::Draining,
            _ => RunState::Stopping,
        }
    }

    pub(crate) fn class(&self, p: Priority) -> &Class {
        let [low, normal, high, critical] = &self.classes;
        match p {
            Priority::Low => low,
            Priority::Normal => normal,
            Priority::High => high,
            Priority::Critical => critical,
        }
    }

    /// Tasks waiting in all queues.
    pub(crate) fn total_queued(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.queued.load(Ordering::Acquire))
            .sum()
    }

    /// How long an idle worker sleeps before looking around again.
    pub(crate) fn idle_park(&self) -> Duration {
        self.config
            .monitor_interval
            .unwrap_or(Duration::from_millis(50))
    }

    /// Reserves room for one task of class `p`.
    #[inline]
    pub(crate) fn try_reserve(&self, p: Priority) -> HiveResult<()> {
        if self.run_state() != RunState::Running {
            return Err(HiveError::Closed { what: "balancer" });
        }
        let class = self.class(p);
        let mut used = class.queued.load(Ordering::Relaxed);
        loop {
            if used >= class.capacity {
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

    /// Puts a task (whose room is reserved) on the better of two randomly
    /// chosen active workers, by the document's score over live counters.
    pub(crate) fn place(&self, task: Task) {
        if task.class == Priority::Critical {
            self.critical
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(task);
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
            let share = (self.total_capacity as f64 / active as f64).max(1.0);
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
        let task = self
            .critical
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()?;
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

    /// Starts the thread of slot `active` and makes it take work.
    pub(crate) fn add_worker(self: &Arc<Self>) -> HiveResult<bool> {
        let index = self.active.load(Ordering::Acquire);
        let Some(worker) = self.workers.get(index) else {
            return Ok(false);
        };
        if worker.started.load(Ordering::Acquire) {
            // The previous thread of this slot is still retiring.
            return Ok(false);
        }
        worker.retire.store(false, Ordering::Release);
        worker.queues().accepting = true;
        worker.started.store(true, Ordering::Release);
        let (shared, me) = (self.clone(), worker.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{}", self.config.thread_name, index))
            .spawn(move || worker::run(shared, me));
        match spawned {
            Ok(handle) => {
                self.threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(handle);
                self.active.store(index + 1, Ordering::Release);
                Ok(true)
            }
            Err(e) => {
                worker.started.store(false, Ordering::Release);
                Err(HiveError::Io(e))
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
        while let Some(task) = self.pop_critical() {
            self.release_slot(task.class);
            task.job.cancel();
            cancelled += 1;
        }
        for worker in self.workers.iter() {
            let tasks = worker.queues().drain();
            worker.load.queued.fetch_sub(tasks.len(), Ordering::AcqRel);
            for task in tasks {
                self.release_slot(task.class);
                task.job.cancel();
                cancelled += 1;
            }
        }
        cancelled
    }

    pub(crate) fn wake_all(&self) {
        for worker in self.workers.iter() {
            worker.unpark();
        }
    }
}
