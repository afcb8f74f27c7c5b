//! A worker: its class queues, how it picks the next task, and its loop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use hive_types::histogram::{AtomicHistogram, COARSE};
use hive_types::{PerPriority, Priority};

use crate::shared::{RunState, Shared};
use crate::task::Task;
use hive_types::sync::lock;

/// One worker's queues, one per class.
pub(crate) struct Queues {
    classes: PerPriority<VecDeque<Task>>,
    /// Cleared when the worker retires: placement must pick another.
    pub(crate) accepting: bool,
    /// Deficit round robin credits of High, Normal, Low.
    credits: [u32; 3],
    /// Whether the next pick goes to a starving task (picks alternate).
    aged_turn: bool,
}

/// The non-critical classes in the order weights are given.
const WEIGHTED: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

impl Queues {
    fn new() -> Self {
        Queues {
            classes: Default::default(),
            accepting: true,
            credits: [0; 3],
            aged_turn: true,
        }
    }

    pub(crate) fn push(&mut self, task: Task) {
        self.classes[task.class].push_back(task);
    }

    fn class(&mut self, p: Priority) -> &mut VecDeque<Task> {
        &mut self.classes[p]
    }

    /// The next task: `Critical` first. Then, when a `Low` (else `Normal`)
    /// task has waited past the aging threshold, every other pick is that
    /// task, so it runs within about one task of starving while the class
    /// above keeps at least half the picks. Otherwise High, Normal and Low
    /// share by weight (deficit round robin).
    pub(crate) fn pop_next(
        &mut self,
        now: &mut LazyNow,
        aging: std::time::Duration,
        weights: [u32; 3],
    ) -> Option<Task> {
        if let Some(task) = self.class(Priority::Critical).pop_front() {
            return Some(task);
        }
        let mut starving = None;
        for p in [Priority::Low, Priority::Normal] {
            let Some(enqueued) = self.class(p).front().map(|t| t.enqueued) else {
                continue;
            };
            if now.get().saturating_duration_since(enqueued) > aging {
                starving = Some(p);
                break;
            }
        }
        if let Some(p) = starving {
            self.aged_turn = !self.aged_turn;
            if !self.aged_turn {
                return self.class(p).pop_front();
            }
        }
        for _ in 0..2 {
            for (slot, p) in WEIGHTED.iter().enumerate() {
                let has_credit = self.credits.get(slot).is_some_and(|&c| c > 0);
                if has_credit && !self.class(*p).is_empty() {
                    if let Some(c) = self.credits.get_mut(slot) {
                        *c -= 1;
                    }
                    return self.class(*p).pop_front();
                }
            }
            self.credits = weights;
        }
        None
    }

    /// The most urgent task, for a thief: highest class first.
    fn steal(&mut self) -> Option<Task> {
        Priority::ALL
            .iter()
            .rev()
            .find_map(|&p| self.class(p).pop_front())
    }

    /// Every queued task (for retiring or cancelling).
    pub(crate) fn drain(&mut self) -> Vec<Task> {
        self.classes
            .values_mut()
            .flat_map(|q| q.drain(..))
            .collect()
    }
}

/// The clock, read at most once per pick and only when needed: a clock
/// read costs as much as a no-op task's whole bookkeeping.
pub(crate) struct LazyNow(Option<Instant>);

impl LazyNow {
    pub(crate) fn new() -> Self {
        LazyNow(None)
    }

    pub(crate) fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// A worker's live load: tasks in its queues, and whether it runs one.
#[derive(Default)]
pub(crate) struct LiveLoad {
    pub(crate) queued: AtomicUsize,
    pub(crate) running: AtomicBool,
}

/// Counters the worker thread writes and others read.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) sleeping: AtomicBool,
    /// Start of the current busy period (nanos since epoch + 1; 0 = idle).
    pub(crate) busy_since: AtomicU64,
    /// Busy nanoseconds of finished busy periods.
    pub(crate) busy_ns: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) completed_by_class: PerPriority<AtomicU64>,
}

pub(crate) struct Worker {
    pub(crate) index: usize,
    queues: CachePadded<Mutex<Queues>>,
    /// What placement reads per submission, on one cache line.
    pub(crate) load: CachePadded<LiveLoad>,
    pub(crate) live: CachePadded<Live>,
    /// Busy fraction of the last scale interval (f64 bits).
    pub(crate) sampled_load: AtomicU64,
    pub(crate) retire: AtomicBool,
    /// Whether a thread runs this slot.
    pub(crate) started: AtomicBool,
    thread: Mutex<Option<Thread>>,
    pub(crate) wait_ns: PerPriority<AtomicHistogram>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl Worker {
    pub(crate) fn new(index: usize) -> Self {
        Worker {
            index,
            queues: CachePadded::new(Mutex::new(Queues::new())),
            load: CachePadded::new(LiveLoad::default()),
            live: CachePadded::new(Live::default()),
            sampled_load: AtomicU64::new(0f64.to_bits()),
            retire: AtomicBool::new(false),
            started: AtomicBool::new(false),
            thread: Mutex::new(None),
            wait_ns: PerPriority::from_fn(|_| AtomicHistogram::new(COARSE)),
        }
    }

    pub(crate) fn queues(&self) -> MutexGuard<'_, Queues> {
        lock(&self.queues)
    }

    pub(crate) fn unpark(&self) {
        if let Some(t) = lock(&self.thread).as_ref() {
            t.unpark();
        }
    }

    /// The seed design's score, from live counters: lower is better. Load
    /// (running now, and busy in the last interval) weighs 0.7; the queue
    /// 0.3, as the queue's length against the mean over active workers
    /// (`mean_queued`): 0 when empty, 0.5 at the mean, towards 1 above.
    pub(crate) fn score(&self, mean_queued: f64) -> f64 {
        let running = if self.load.running.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        };
        let sampled = f64::from_bits(self.sampled_load.load(Ordering::Relaxed));
        let load = 0.5 * running + 0.5 * sampled;
        let queued = self.load.queued.load(Ordering::Relaxed) as f64;
        let fill = queued / (queued + mean_queued + 1.0);
        load * 0.7 + fill * 0.3
    }

    /// Busy nanoseconds so far, counting the current busy period.
    pub(crate) fn busy_total(&self, now_ns: u64) -> u64 {
        let since = self.live.busy_since.load(Ordering::Acquire);
        let open = if since == 0 {
            0
        } else {
            now_ns.saturating_sub(since - 1)
        };
        self.live.busy_ns.load(Ordering::Acquire) + open
    }

    fn begin_busy(&self, shared: &Shared) {
        let now = shared.nanos(Instant::now());
        self.live.busy_since.store(now + 1, Ordering::Release);
    }

    fn end_busy(&self, shared: &Shared) {
        let since = self.live.busy_since.swap(0, Ordering::AcqRel);
        if since != 0 {
            let now = shared.nanos(Instant::now());
            self.live
                .busy_ns
                .fetch_add(now.saturating_sub(since - 1), Ordering::AcqRel);
        }
    }

    fn take(&self, pick: impl FnOnce(&mut Queues) -> Option<Task>) -> Option<Task> {
        let task = pick(&mut self.queues())?;
        self.load.queued.fetch_sub(1, Ordering::AcqRel);
        Some(task)
    }
}

std::thread_local! {
    /// The balancer whose worker this thread is (its `Shared`'s address).
    static OWNER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

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
            let _ = self.shared.start_slot(self.me.index);
        }
    }
}

/// The worker thread.
pub(crate) fn run(shared: Arc<Shared>, me: Arc<Worker>) {
    *lock(&me.thread) = Some(std::thread::current());
    OWNER.with(|o| o.set(Arc::as_ptr(&shared) as usize));
    let _respawn = Respawn {
        shared: &shared,
        me: &me,
    };
    let mut rng = fastrand::Rng::new();
    me.begin_busy(&shared);
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
    me.end_busy(&shared);
    me.started.store(false, Ordering::Release);
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
        let Ok(mut queues) = victim.queues.try_lock() else {
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
        me.end_busy(shared);
        std::thread::park_timeout(shared.idle_park());
        me.begin_busy(shared);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Job;
    use std::time::Duration;

    struct Noop;
    impl Job for Noop {
        fn run(self: Box<Self>) -> bool {
            false
        }
        fn cancel(self: Box<Self>) {}
    }

    fn task(class: Priority, enqueued: Instant) -> Task {
        Task {
            job: Box::new(Noop),
            class,
            enqueued,
        }
    }

    fn picks(q: &mut Queues, now: Instant, aging: Duration, n: usize) -> Vec<Priority> {
        (0..n)
            .filter_map(|_| {
                q.pop_next(&mut LazyNow(Some(now)), aging, [4, 2, 1])
                    .map(|t| t.class)
            })
            .collect()
    }

    #[test]
    fn critical_first_then_shares_by_weight() {
        let now = Instant::now();
        let mut q = Queues::new();
        for p in [Priority::Low, Priority::Normal, Priority::High] {
            for _ in 0..70 {
                q.push(task(p, now));
            }
        }
        q.push(task(Priority::Critical, now));
        let order = picks(&mut q, now, Duration::from_secs(60), 71);
        assert_eq!(order[0], Priority::Critical);
        let count = |p| order[1..].iter().filter(|&&c| c == p).count();
        assert_eq!(
            (
                count(Priority::High),
                count(Priority::Normal),
                count(Priority::Low)
            ),
            (40, 20, 10)
        );
    }

    #[test]
    fn a_starving_low_task_runs_within_two_picks() {
        let start = Instant::now();
        let mut q = Queues::new();
        for _ in 0..100 {
            q.push(task(Priority::High, start));
        }
        q.push(task(Priority::Low, start));
        let later = start + Duration::from_millis(100);
        let order = picks(&mut q, later, Duration::from_millis(50), 2);
        assert!(order.contains(&Priority::Low), "{order:?}");
        // A whole class of starving Low work still leaves High half the picks.
        let mut q = Queues::new();
        for _ in 0..100 {
            q.push(task(Priority::High, start));
            q.push(task(Priority::Low, start));
        }
        let order = picks(&mut q, later, Duration::from_millis(50), 100);
        assert!(
            order.iter().filter(|&&c| c == Priority::High).count() >= 40,
            "{order:?}"
        );
    }
}
