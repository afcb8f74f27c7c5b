//! A worker slot's state: its class queues and how it picks the next
//! task, its live load and counters. The thread that runs a slot is in
//! `worker`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use hive_types::histogram::{AtomicHistogram, COARSE};
use hive_types::sync::lock;
use hive_types::{PerPriority, Priority};

use crate::cputime::OsThread;
use crate::task::Task;

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
    pub(crate) fn steal(&mut self) -> Option<Task> {
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
    /// The kernel's view of the slot's current thread (its CPU time).
    os_thread: Mutex<Option<OsThread>>,
    pub(crate) wait_ns: PerPriority<AtomicHistogram>,
}

/// Adds to a counter only this worker's thread writes (no atomic RMW).
pub(crate) fn add(counter: &AtomicU64, n: u64) {
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
            os_thread: Mutex::new(None),
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

    /// A busy period starts at `now_ns` (nanoseconds since the epoch).
    pub(crate) fn begin_busy(&self, now_ns: u64) {
        self.live.busy_since.store(now_ns + 1, Ordering::Release);
    }

    /// The busy period ends at `now_ns`.
    pub(crate) fn end_busy(&self, now_ns: u64) {
        let since = self.live.busy_since.swap(0, Ordering::AcqRel);
        if since != 0 {
            self.live
                .busy_ns
                .fetch_add(now_ns.saturating_sub(since - 1), Ordering::AcqRel);
        }
    }

    /// Its queues, unless another thread holds them (stealing skips it).
    pub(crate) fn try_queues(&self) -> Option<MutexGuard<'_, Queues>> {
        self.queues.try_lock().ok()
    }

    /// Records the thread that runs this slot (to unpark it).
    /// Called by the slot's thread when it starts.
    pub(crate) fn set_thread(&self, thread: Thread) {
        *lock(&self.thread) = Some(thread);
        *lock(&self.os_thread) = OsThread::current();
    }

    /// The slot's thread ends: its id may go to another thread.
    pub(crate) fn clear_thread(&self) {
        *lock(&self.os_thread) = None;
    }

    /// CPU time of the slot's current thread and how long it has run.
    pub(crate) fn cpu_time(&self) -> Option<(Duration, Duration)> {
        let os_thread = *lock(&self.os_thread);
        os_thread?.cpu_time()
    }

    pub(crate) fn take(&self, pick: impl FnOnce(&mut Queues) -> Option<Task>) -> Option<Task> {
        let task = pick(&mut self.queues())?;
        self.load.queued.fetch_sub(1, Ordering::AcqRel);
        Some(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
                q.push(Task::noop(p, now));
            }
        }
        q.push(Task::noop(Priority::Critical, now));
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
            q.push(Task::noop(Priority::High, start));
        }
        q.push(Task::noop(Priority::Low, start));
        let later = start + Duration::from_millis(100);
        let order = picks(&mut q, later, Duration::from_millis(50), 2);
        assert!(order.contains(&Priority::Low), "{order:?}");
        // A whole class of starving Low work still leaves High half the picks.
        let mut q = Queues::new();
        for _ in 0..100 {
            q.push(Task::noop(Priority::High, start));
            q.push(Task::noop(Priority::Low, start));
        }
        let order = picks(&mut q, later, Duration::from_millis(50), 100);
        assert!(
            order.iter().filter(|&&c| c == Priority::High).count() >= 40,
            "{order:?}"
        );
    }
}
