//! A worker thread: its loop (critical work, its own queues, stealing,
//! spinning, sleeping), and starting one for a slot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hive_types::sync::lock;
use hive_types::{HiveError, HiveResult};

use crate::shared::{RunState, Shared};
use crate::slot::{add, LazyNow, Worker};
use crate::task::Task;

std::thread_local! {
    /// The balancer whose worker this thread is (its `Shared`'s address).
    static OWNER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// This worker's slot.
    static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Tasks this thread runs nested in another one's wait (see `help_one`).
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Most tasks run nested in one another's waits on one thread.
const MAX_HELP_DEPTH: u32 = 8;

/// Whether the calling thread is one of `shared`'s workers.
pub(crate) fn runs_on(shared: &Shared) -> bool {
    OWNER.with(|o| o.get() == std::ptr::from_ref(shared) as usize)
}

/// Replaces a worker whose thread dies by a panic outside any task (a
/// task's own panics are caught): the slot is started again.
struct Respawn<'a> {
    shared: &'a Arc<Shared>,
    me: &'a Arc<Worker>,
}

impl Drop for Respawn<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.me.started.store(false, Ordering::Release);
            let _ = start_slot(self.shared, self.me.index);
        }
    }
}

/// The worker thread.
pub(crate) fn run(shared: Arc<Shared>, me: Arc<Worker>) {
    me.set_thread(std::thread::current());
    OWNER.with(|o| o.set(Arc::as_ptr(&shared) as usize));
    SLOT.with(|i| i.set(me.index));
    let _respawn = Respawn {
        shared: &shared,
        me: &me,
    };
    let mut rng = fastrand::Rng::new();
    me.begin_busy(shared.nanos(Instant::now()));
    loop {
        // A retiring worker hands its queue back rather than working it off.
        if me.retire.load(Ordering::Acquire) {
            retire(&shared, &me);
            break;
        }
        let mut now = LazyNow::new();
        let (aging, weights) = (shared.config.aging_threshold, shared.config.weights);
        let task = shared
            .pop_critical()
            .or_else(|| me.take(|q| q.pop_next(&mut now, aging, weights)))
            .or_else(|| steal(&shared, &me, &mut rng));
        if let Some(task) = task {
            execute(&shared, &me, task, &mut now);
            continue;
        }
        match shared.run_state() {
            RunState::Stopping => break,
            // Submissions still being placed count as queued work.
            RunState::Draining if !shared.submissions_in_flight() && shared.total_queued() == 0 => {
                break
            }
            _ => {}
        }
        if spin_for_work(&shared, &me) {
            continue;
        }
        sleep(&shared, &me);
    }
    me.end_busy(shared.nanos(Instant::now()));
    me.clear_thread();
    me.started.store(false, Ordering::Release);
}

/// Runs one queued task on the calling worker thread, nested in the task
/// that waits there (for something a queued task may provide). False when
/// the thread is not one of `shared`'s workers, nesting is already deep, or
/// nothing is queued.
pub(crate) fn help_one(shared: &Shared) -> bool {
    if !runs_on(shared) {
        return false;
    }
    let depth = DEPTH.with(std::cell::Cell::get);
    if depth >= MAX_HELP_DEPTH {
        return false;
    }
    let Some(me) = shared.workers.get(SLOT.with(std::cell::Cell::get)).cloned() else {
        return false;
    };
    let mut now = LazyNow::new();
    let (aging, weights) = (shared.config.aging_threshold, shared.config.weights);
    let mut rng = fastrand::Rng::new();
    let Some(task) = shared
        .pop_critical()
        .or_else(|| me.take(|q| q.pop_next(&mut now, aging, weights)))
        .or_else(|| steal(shared, &me, &mut rng))
    else {
        return false;
    };
    DEPTH.with(|d| d.set(depth + 1));
    let running = me.load.running.load(Ordering::Relaxed);
    execute(shared, &me, task, &mut now);
    me.load.running.store(running, Ordering::Relaxed);
    DEPTH.with(|d| d.set(depth));
    true
}

fn execute(shared: &Shared, me: &Worker, task: Task, picked: &mut LazyNow) {
    shared.release_slot(task.class);
    if shared.config.stats {
        let waited = picked.get().saturating_duration_since(task.enqueued);
        me.wait_ns[task.class].record(u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX));
    }
    let class = task.class;
    me.load.running.store(true, Ordering::Relaxed);
    let panicked = task.job.run();
    me.load.running.store(false, Ordering::Relaxed);
    add(&me.live.completed, 1);
    add(&me.live.completed_by_class[class], 1);
    if panicked {
        add(&me.live.panics, 1);
    }
}

/// Takes the most urgent task of another worker, starting at a random one.
fn steal(shared: &Shared, me: &Worker, rng: &mut fastrand::Rng) -> Option<Task> {
    if shared.total_queued() == 0 {
        return None;
    }
    let slots = shared.workers.len();
    let start = rng.usize(..slots.max(1));
    for k in 0..slots {
        let Some(victim) = shared.workers.get((start + k) % slots) else {
            continue;
        };
        if victim.index == me.index || victim.load.queued.load(Ordering::Acquire) == 0 {
            continue;
        }
        let Some(mut queues) = victim.try_queues() else {
            continue;
        };
        if let Some(task) = queues.steal() {
            drop(queues);
            victim.load.queued.fetch_sub(1, Ordering::AcqRel);
            add(&me.live.steals, 1);
            return Some(task);
        }
    }
    None
}

/// Rounds of `yield_now` after the spin, before sleeping.
const YIELD_ROUNDS: u32 = 64;

/// Spins, then yields, before sleeping: under load new work is a moment
/// away, and a sleeping worker costs the next submitter a wake-up syscall.
fn spin_for_work(shared: &Shared, me: &Worker) -> bool {
    let found = || {
        me.load.queued.load(Ordering::Acquire) > 0
            || shared.total_queued() > 0
            || me.retire.load(Ordering::Acquire)
            || shared.run_state() != RunState::Running
    };
    for _ in 0..YIELD_ROUNDS {
        std::thread::yield_now();
        if found() {
            return true;
        }
    }
    false
}

fn sleep(shared: &Shared, me: &Worker) {
    me.live.sleeping.store(true, Ordering::SeqCst);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    let work_waits = me.load.queued.load(Ordering::SeqCst) > 0 || shared.total_queued() > 0;
    let told_to_stop = me.retire.load(Ordering::SeqCst) || shared.run_state() != RunState::Running;
    if !work_waits && !told_to_stop {
        me.end_busy(shared.nanos(Instant::now()));
        std::thread::park_timeout(shared.idle_park());
        me.begin_busy(shared.nanos(Instant::now()));
    }
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
    me.live.sleeping.store(false, Ordering::SeqCst);
}

/// A retiring worker stops accepting and hands its queue to the others.
fn retire(shared: &Shared, me: &Worker) {
    let tasks = {
        let mut queues = me.queues();
        queues.accepting = false;
        queues.drain()
    };
    me.load.queued.fetch_sub(tasks.len(), Ordering::AcqRel);
    for task in tasks {
        shared.place(task);
    }
}

/// Starts the thread of slot `active` and makes it take work.
pub(crate) fn add_worker(shared: &Arc<Shared>) -> HiveResult<bool> {
    let _adding = lock(&shared.adding);
    let index = shared.active.load(Ordering::Acquire);
    let Some(worker) = shared.workers.get(index) else {
        return Ok(false);
    };
    if worker.started.load(Ordering::Acquire) {
        // The previous thread of this slot is still retiring.
        return Ok(false);
    }
    worker.retire.store(false, Ordering::Release);
    worker.queues().accepting = true;
    let started = start_slot(shared, index)?;
    if started {
        shared.active.store(index + 1, Ordering::Release);
    }
    Ok(started)
}

/// Starts a thread for slot `index` (a new worker, or one replacing a
/// thread that died).
pub(crate) fn start_slot(shared: &Arc<Shared>, index: usize) -> HiveResult<bool> {
    let Some(worker) = shared.workers.get(index) else {
        return Ok(false);
    };
    if shared.run_state() == RunState::Stopping {
        return Ok(false);
    }
    worker.started.store(true, Ordering::Release);
    let (thread_shared, me) = (shared.clone(), worker.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("{}-{}", shared.config.thread_name, index))
        .spawn(move || run(thread_shared, me));
    match spawned {
        Ok(handle) => {
            lock(&shared.threads).push(handle);
            Ok(true)
        }
        Err(e) => {
            worker.started.store(false, Ordering::Release);
            Err(HiveError::Io(e))
        }
    }
}
