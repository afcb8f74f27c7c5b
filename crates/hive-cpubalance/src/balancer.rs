//! [`Balancer`]: submit closures at a priority; shut down cleanly.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_types::{HiveResult, Priority, Rejected};

use crate::config::BalancerConfig;
use crate::scaler::{self, ScaleDecision};
use crate::shared::{RunState, Shared};
use crate::stats::{self, BalancerStats};
use crate::task::{Detached, HandleState, Job, Task, TaskHandle, WithHandle};
use hive_types::sync::lock;

/// A priority-aware executor of CPU-bound closures on OS threads.
///
/// Share it between submitting threads with an `Arc`. See the
/// [crate documentation](crate) for the scheduling rules and examples.
pub struct Balancer {
    shared: Arc<Shared>,
}

/// How long a submission may wait for room.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Forever,
    /// Until the instant; the duration is the timeout the caller gave.
    Until(Instant, Duration),
}

impl Balancer {
    /// Starts `min_workers` workers (and the scaler, if configured).
    pub fn new(config: BalancerConfig) -> HiveResult<Self> {
        config.validate()?;
        let shared = Shared::new(config);
        let balancer = Balancer { shared };
        for _ in 0..balancer.shared.config.min_workers {
            crate::worker::add_worker(&balancer.shared)?;
        }
        scaler::spawn(&balancer.shared)?;
        Ok(balancer)
    }

    /// The configuration in use.
    pub fn config(&self) -> &BalancerConfig {
        &self.shared.config
    }

    /// Runs `f` at priority `p`, waiting for room in that class's queue.
    /// Nothing waits for the result; a panic is counted and contained.
    pub fn spawn<F>(&self, p: Priority, f: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(p, f, Wait::Forever, Detached)
    }

    /// Like [`spawn`](Self::spawn) but never waits: a full class queue hands
    /// the closure back with [`HiveError::Full`](hive_types::HiveError::Full).
    pub fn try_spawn<F>(&self, p: Priority, f: F) -> Result<(), Rejected<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(p, f, Wait::No, Detached)
    }

    /// Runs `f` at priority `p`, waiting for room; the handle yields its result.
    pub fn submit<F, R>(&self, p: Priority, f: F) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.submit_with(p, f, Wait::Forever)
    }

    /// Like [`submit`](Self::submit), waiting at most `timeout` for room
    /// ([`HiveError::Timeout`](hive_types::HiveError::Timeout) hands the closure back).
    pub fn submit_timeout<F, R>(
        &self,
        p: Priority,
        f: F,
        timeout: Duration,
    ) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3_153_600_000));
        self.submit_with(p, f, Wait::Until(deadline, timeout))
    }

    /// Like [`submit`](Self::submit) but never waits: a full class queue
    /// hands the closure back with [`HiveError::Full`](hive_types::HiveError::Full).
    pub fn try_submit<F, R>(&self, p: Priority, f: F) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.submit_with(p, f, Wait::No)
    }

    /// Runs `f` at priority `p` from async code: awaits room in that
    /// class's queue (never blocking the thread), then returns the handle,
    /// itself a future of the result. Works on any executor.
    ///
    /// ```
    /// # use hive_cpubalance::{Balancer, BalancerConfig};
    /// # use hive_types::Priority;
    /// # async fn demo(balancer: &Balancer) -> hive_types::HiveResult<u64> {
    /// let handle = balancer
    ///     .submit_async(Priority::High, || (1..=10u64).product::<u64>())
    ///     .await
    ///     .map_err(hive_types::HiveError::from)?;
    /// handle.await
    /// # }
    /// ```
    pub async fn submit_async<F, R>(&self, p: Priority, f: F) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let class = self.class_for(p);
        let reserved = self
            .shared
            .reserve_async(class, None::<std::future::Ready<()>>, Duration::MAX)
            .await;
        self.commit_with_handle(class, f, reserved)
    }

    /// Like [`submit_async`](Self::submit_async), giving up when `give_up`
    /// completes (pass your runtime's timer, e.g. `tokio::time::sleep(timeout)`):
    /// the closure comes back with
    /// [`HiveError::Timeout`](hive_types::HiveError::Timeout) reporting `timeout`.
    pub async fn submit_async_timeout<F, R>(
        &self,
        p: Priority,
        f: F,
        timeout: Duration,
        give_up: impl std::future::Future<Output = ()>,
    ) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let class = self.class_for(p);
        let reserved = self
            .shared
            .reserve_async(class, Some(give_up), timeout)
            .await;
        self.commit_with_handle(class, f, reserved)
    }

    fn commit_with_handle<F, R>(
        &self,
        p: Priority,
        f: F,
        reserved: HiveResult<()>,
    ) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let state = HandleState::new();
        let job_state = state.clone();
        self.commit(p, f, reserved, move |f| WithHandle {
            f,
            state: job_state,
        })?;
        Ok(TaskHandle::new(p, state))
    }

    /// The class a task requested at `p` runs in.
    fn class_for(&self, requested: Priority) -> Priority {
        if self.shared.config.priorities {
            requested
        } else {
            Priority::Normal
        }
    }

    fn submit_with<F, R>(&self, p: Priority, f: F, wait: Wait) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let class = self.class_for(p);
        let reserved = self.reserve(class, wait);
        self.commit_with_handle(class, f, reserved)
    }

    fn reserve(&self, p: Priority, wait: Wait) -> HiveResult<()> {
        match wait {
            Wait::No => self.shared.try_reserve(p),
            Wait::Forever => self.shared.reserve_waiting(p, None),
            Wait::Until(d, timeout) => self.shared.reserve_waiting(p, Some((d, timeout))),
        }
    }

    /// Reserves room (giving `f` back on refusal), then queues the job.
    fn enqueue<F, J>(
        &self,
        requested: Priority,
        f: F,
        wait: Wait,
        wrap: impl FnOnce(F) -> J,
    ) -> Result<(), Rejected<F>>
    where
        J: Job + 'static,
    {
        let p = self.class_for(requested);
        let reserved = self.reserve(p, wait);
        self.commit(p, f, reserved, wrap)
    }

    /// Queues the job if room was reserved, else gives `f` back.
    fn commit<F, J>(
        &self,
        p: Priority,
        f: F,
        reserved: HiveResult<()>,
        wrap: impl FnOnce(F) -> J,
    ) -> Result<(), Rejected<F>>
    where
        J: Job + 'static,
    {
        if let Err(e) = reserved {
            if !e.is_closed() {
                self.shared
                    .class(p)
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
            }
            return Err(Rejected::new(f, e));
        }
        self.shared
            .class(p)
            .submitted
            .fetch_add(1, Ordering::Relaxed);
        let task = Task {
            job: Box::new(wrap(f)),
            class: p,
            enqueued: Instant::now(),
        };
        self.shared.submit(task);
        Ok(())
    }

    /// Runs `f`, which waits (for room in a queue, for a reply), without
    /// keeping the calling worker's place from other work: while fewer than
    /// `min_workers` workers are free of such waits, another worker starts
    /// (at most `blocking_workers` beyond `max_workers`); the scaler retires
    /// it once the waits are over. Tasks that wait on each other's work then
    /// slow down instead of holding every worker while that work sits
    /// queued. On a thread that is not one of this balancer's workers it
    /// just runs `f`.
    ///
    /// ```
    /// use hive_cpubalance::{Balancer, BalancerConfig, Priority};
    ///
    /// let balancer = std::sync::Arc::new(Balancer::new(BalancerConfig::default().workers(1, 1))?);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let b = balancer.clone();
    /// // The only worker waits for a task queued behind it: without
    /// // `blocking` this would never finish.
    /// let waiter = balancer.submit(Priority::Normal, move || {
    ///     b.spawn(Priority::Normal, move || tx.send(42).unwrap()).ok();
    ///     b.blocking(|| rx.recv().unwrap())
    /// }).map_err(|r| r.into_parts().1)?;
    /// assert_eq!(waiter.join()?, 42);
    /// # Ok::<(), hive_cpubalance::HiveError>(())
    /// ```
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        if !crate::worker::runs_on(&self.shared) {
            return f();
        }
        let shared = &self.shared;
        let blocked = shared.blocked.fetch_add(1, Ordering::AcqRel) + 1;
        let active = shared.active.load(Ordering::Acquire);
        if active.saturating_sub(blocked) < shared.config.min_workers {
            // Best effort: a slot still retiring or no thread to start
            // leaves the wait as it was.
            let _ = crate::worker::add_worker(shared);
        }
        struct Unblock<'a>(&'a Shared);
        impl Drop for Unblock<'_> {
            fn drop(&mut self) {
                self.0.blocked.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _unblock = Unblock(shared);
        f()
    }

    /// Runs one queued task on the calling worker thread, nested in the
    /// task running there, which waits for something a queued task may
    /// provide (room in a mailbox, a result): the waiter helps instead of
    /// holding its worker idle, as a rayon worker does in `join`. Returns
    /// whether it ran one; `false` off this balancer's workers, when eight
    /// tasks already run nested on this thread, or when nothing is queued.
    /// Call it in the wait's loop, then wait in [`blocking`](Self::blocking).
    pub fn help(&self) -> bool {
        crate::worker::help_one(&self.shared)
    }

    /// One scaling step now: samples busy time since the previous step and
    /// scales. The scaler thread calls it every interval; with
    /// `scale_interval: None` the caller drives it.
    pub fn rebalance(&self) -> ScaleDecision {
        let decision = scaler::step(&self.shared);
        stats::publish(&self.shared);
        decision
    }

    /// Workers taking work now.
    pub fn active_workers(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Tasks waiting in all queues.
    pub fn queued(&self) -> usize {
        self.shared.total_queued()
    }

    /// A snapshot of per-worker and per-class figures.
    pub fn stats(&self) -> BalancerStats {
        stats::snapshot(&self.shared)
    }

    /// Stops accepting work, runs everything already accepted, then stops
    /// the workers and waits for their threads.
    ///
    /// From one of this balancer's own tasks it would wait for itself:
    /// that is [`HiveError::WouldDeadlock`](hive_types::HiveError::WouldDeadlock)
    /// (use [`shutdown_timeout`](Self::shutdown_timeout) there).
    pub fn shutdown(&self) -> HiveResult<()> {
        self.refuse_from_own_worker("Balancer::shutdown")?;
        self.shared.advance(RunState::Draining);
        self.shared.wait_for_submissions();
        self.shared.wake_all();
        self.join_all();
        Ok(())
    }

    /// Stops accepting work, resolves every queued task's handle as
    /// [`HiveError::Cancelled`](hive_types::HiveError::Cancelled), waits for running tasks, stops the workers.
    /// Returns how many tasks were cancelled (also counted per class in
    /// [`stats`](Self::stats)). Refused like [`shutdown`](Self::shutdown)
    /// from the balancer's own tasks.
    pub fn shutdown_now(&self) -> HiveResult<usize> {
        self.refuse_from_own_worker("Balancer::shutdown_now")?;
        self.shared.advance(RunState::Stopping);
        self.shared.wait_for_submissions();
        let cancelled = self.shared.cancel_queued();
        self.shared.wake_all();
        self.join_all();
        Ok(cancelled)
    }

    fn refuse_from_own_worker(&self, what: &'static str) -> HiveResult<()> {
        if crate::worker::runs_on(&self.shared) {
            return Err(hive_types::HiveError::WouldDeadlock { what });
        }
        Ok(())
    }

    /// Like [`shutdown`](Self::shutdown), waiting at most `timeout` for
    /// the workers to finish what was accepted. A worker still running a
    /// task then (one that never returns) is left to end on its own.
    /// Returns whether every worker stopped. Safe to call from one of this
    /// balancer's own tasks: that worker is not waited for.
    pub fn shutdown_timeout(&self, timeout: Duration) -> bool {
        self.shared.advance(RunState::Draining);
        self.shared.wait_for_submissions();
        self.shared.wake_all();
        let deadline = Instant::now() + timeout;
        let me = std::thread::current().id();
        loop {
            let mut threads = lock(&self.shared.threads);
            let (done, running): (Vec<_>, Vec<_>) =
                threads.drain(..).partition(|h| h.is_finished());
            *threads = running;
            drop(threads);
            for h in done {
                let _ = h.join();
            }
            let threads = lock(&self.shared.threads);
            let waiting = threads.iter().filter(|h| h.thread().id() != me).count();
            if waiting == 0 {
                return !threads.iter().any(|h| h.thread().id() == me);
            }
            drop(threads);
            if Instant::now() >= deadline {
                return false;
            }
            self.shared.wake_all();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn join_all(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(&mut *lock(&self.shared.threads));
            if handles.is_empty() {
                return;
            }
            for h in &handles {
                h.thread().unpark();
            }
            for h in handles {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Balancer {
    /// Cancels what is queued (counted as cancelled in the stats and the
    /// `hive_cpu_tasks_cancelled_total` metric) and tells the workers
    /// to stop after their current task, without waiting for them:
    /// dropping never hangs.
    fn drop(&mut self) {
        if self.shared.advance(RunState::Stopping) != RunState::Stopping {
            self.shared.wait_for_submissions();
            self.shared.cancel_queued(); // counted per class as cancelled
        }
        self.shared.wake_all();
        for h in lock(&self.shared.threads).iter() {
            h.thread().unpark();
        }
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("active_workers", &self.active_workers())
            .field("queued", &self.queued())
            .field("state", &self.shared.run_state())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Mutex};

    #[test]
    fn waits_in_blocking_get_a_worker_that_retires_after_them() {
        let config = BalancerConfig::default()
            .workers(1, 1)
            .blocking_workers(3)
            .scale_interval(None);
        let balancer = Arc::new(Balancer::new(config).unwrap());
        // Three tasks each wait for one queued behind them; the one worker
        // alone would wait forever.
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let b = balancer.clone();
                balancer
                    .submit(Priority::Normal, move || {
                        let (tx, rx) = mpsc::channel();
                        b.spawn(Priority::Normal, move || tx.send(i).unwrap())
                            .ok()
                            .unwrap();
                        b.blocking(|| rx.recv().unwrap())
                    })
                    .ok()
                    .unwrap()
            })
            .collect();
        let got: Vec<i32> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2]);
        let grown = balancer.active_workers();
        assert!((2..=4).contains(&grown), "{grown}");
        assert_eq!(balancer.shared.blocked.load(Ordering::Acquire), 0);
        for _ in 1..grown {
            assert_eq!(balancer.rebalance(), ScaleDecision::Retired);
        }
        assert_eq!(balancer.active_workers(), 1, "back to max_workers");
        // Off a worker thread it only runs the closure.
        assert_eq!(balancer.blocking(|| 7), 7);
        assert_eq!(balancer.active_workers(), 1);
    }

    #[test]
    fn a_retiring_worker_hands_its_queue_back_instead_of_working_it_off() {
        let config = BalancerConfig::default().workers(1, 2).scale_interval(None);
        let balancer = Balancer::new(config).unwrap();
        assert!(crate::worker::add_worker(&balancer.shared).unwrap());
        // Occupy both workers, then queue work on both.
        let (release, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (rx, started) = (rx.clone(), started.clone());
            balancer
                .spawn(Priority::Critical, move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.lock().unwrap().recv();
                })
                .unwrap();
        }
        while started.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        let handles: Vec<_> = (0..200)
            .map(|i| balancer.submit(Priority::Low, move || i).unwrap())
            .collect();
        let second = &balancer.shared.workers[1];
        assert!(second.load.queued.load(Ordering::SeqCst) > 0);
        assert!(balancer.shared.retire_worker());
        drop(release);
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i);
        }
        while second.started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let stats = balancer.stats();
        let retired = stats.workers.iter().find(|w| w.index == 1).unwrap();
        assert_eq!(
            (retired.active, retired.completed),
            (false, 1),
            "it ran only its blocked task and handed the rest back"
        );
    }
}
