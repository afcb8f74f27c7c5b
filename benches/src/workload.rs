//! A reference workload: a coordinator agent hands tasks to worker agents,
//! workers do real CPU work and report back. The swarm example and the
//! end-to-end benchmark both run it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hive_types::{AgentId, HiveError, HiveResult, Message, MessageKind, Priority};

use hive_core::{SwarmSystem, SyncContext, SystemReport};

/// How big a run is.
#[derive(Debug, Clone)]
pub struct SwarmWorkload {
    /// Worker agents.
    pub workers: usize,
    /// Tasks to complete (each is two messages: assignment and result).
    pub tasks: u64,
    /// Tasks in flight at once (the coordinator's window).
    pub window: usize,
    /// Task payloads, used in turn (shared, so sending one copies nothing).
    pub payloads: Vec<Bytes>,
}

impl Default for SwarmWorkload {
    fn default() -> Self {
        let payloads = (0..64)
            .map(|i| {
                Bytes::from(format!(
                    "{{\"task\":\"summarise shard {i}\",\"notes\":\"{}\"}}",
                    "lorem ipsum ".repeat(8 + i % 24)
                ))
            })
            .collect();
        SwarmWorkload {
            workers: 16,
            tasks: 500_000,
            window: 2048,
            payloads,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkloadOutcome {
    /// Tasks completed.
    pub tasks_done: u64,
    /// Messages the run's agents handled: an assignment and a result per
    /// task, plus the coordinator's kick-off.
    pub messages: u64,
    /// Wall-clock time from the first assignment to the last result.
    pub elapsed: Duration,
    /// The system's report at the end of the run.
    pub report: SystemReport,
}

impl WorkloadOutcome {
    /// Messages per second over the run.
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Priority of task `i`: mostly Normal and Low, some High, a few Critical.
pub(crate) fn priority_of(i: u64) -> Priority {
    match i % 100 {
        0 => Priority::Critical,
        1..=9 => Priority::High,
        10..=39 => Priority::Low,
        _ => Priority::Normal,
    }
}

/// Set when the last result arrives.
#[derive(Default)]
struct Done {
    /// `Some(true)`: every result arrived; `Some(false)`: a send failed.
    state: Mutex<Option<bool>>,
    wake: Condvar,
}

impl Done {
    fn settle(&self, finished: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.get_or_insert(finished);
        self.wake.notify_all();
    }

    fn finish(&self) {
        self.settle(true);
    }

    /// A task or result could not be sent: the run cannot complete.
    fn fail(&self) {
        self.settle(false);
    }

    /// Waits until the run settles, or `limit` passes.
    fn wait(&self, limit: Duration, started: Instant) -> HiveResult<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match *state {
                Some(true) => return Ok(()),
                Some(false) => {
                    return Err(HiveError::Undeliverable {
                        reason:
                            "a task or its result could not be sent within the agents' send timeout",
                    })
                }
                None => {}
            }
            let (guard, timeout) = self
                .wake
                .wait_timeout(state, limit)
                .unwrap_or_else(PoisonError::into_inner);
            state = guard;
            if timeout.timed_out() && state.is_none() {
                return Err(HiveError::Timeout {
                    what: "workload",
                    after: started.elapsed(),
                });
            }
        }
    }
}

impl SwarmWorkload {
    /// Runs the workload on `system` and reports.
    pub fn run(&self, system: &SwarmSystem) -> HiveResult<WorkloadOutcome> {
        self.run_split(system, system, |_| true)
    }

    /// Runs the coordinator on `system` and the workers on `workers_system`
    /// (another process's system, linked by a transport); `reachable` says
    /// when the coordinator's side can route to a worker id.
    pub fn run_split(
        &self,
        system: &SwarmSystem,
        workers_system: &SwarmSystem,
        reachable: impl Fn(AgentId) -> bool,
    ) -> HiveResult<WorkloadOutcome> {
        if self.workers == 0 || self.payloads.is_empty() || self.tasks == 0 {
            return Err(HiveError::config(
                "workload",
                "needs at least one worker, one payload and one task",
            ));
        }
        let done = Arc::new(Done::default());
        let workers = self.spawn_workers(workers_system, &done)?;
        wait_until_reachable(&workers, reachable)?;
        let completed = Arc::new(AtomicU64::new(0));
        let mut coordinator = Coordinator {
            total: self.tasks,
            window: self.window.max(1) as u64,
            payloads: self.payloads.clone(),
            workers,
            sent: 0,
            completed: completed.clone(),
            done: done.clone(),
        };
        let coordinator = system
            .agent()
            .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| coordinator.handle(m, ctx))?;
        let start = Instant::now();
        system.sender().send(
            Message::builder(AgentId::nil(), coordinator.id())
                .kind(MessageKind::Coordination)
                .build(),
        )?;
        done.wait(Duration::from_secs(120), start)?;
        let elapsed = start.elapsed();
        let tasks_done = completed.load(Ordering::Relaxed);
        Ok(WorkloadOutcome {
            tasks_done,
            // An assignment and a result per task, plus the kick-off: all
            // handled, since the last result has arrived.
            messages: 2 * tasks_done + 1,
            elapsed,
            report: system.report(),
        })
    }

    /// The worker agents, on `system`.
    fn spawn_workers(&self, system: &SwarmSystem, done: &Arc<Done>) -> HiveResult<Vec<AgentId>> {
        (0..self.workers)
            .map(|_| {
                let d = done.clone();
                let worker =
                    system
                        .agent()
                        .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
                            if !worker(m, ctx) {
                                d.fail();
                            }
                        })?;
                Ok(worker.id())
            })
            .collect()
    }
}

/// Waits (30 s at most) until every worker is reachable from the
/// coordinator's system.
fn wait_until_reachable(
    workers: &[AgentId],
    reachable: impl Fn(AgentId) -> bool,
) -> HiveResult<()> {
    let limit = Duration::from_secs(30);
    let deadline = Instant::now() + limit;
    while !workers.iter().all(|w| reachable(*w)) {
        if Instant::now() > deadline {
            return Err(HiveError::Timeout {
                what: "worker routes",
                after: limit,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Hands out `window` tasks, then one more for each result, until `total`
/// results are in.
struct Coordinator {
    total: u64,
    window: u64,
    payloads: Vec<Bytes>,
    workers: Vec<AgentId>,
    sent: u64,
    completed: Arc<AtomicU64>,
    done: Arc<Done>,
}

impl Coordinator {
    fn handle(&mut self, m: Message, ctx: &mut SyncContext<'_>) {
        match m.kind {
            MessageKind::Coordination => {
                let first = self.window.min(self.total);
                for i in 0..first {
                    if let Some(&to) = cycled(&self.workers, i) {
                        self.assign(to, i, ctx);
                    }
                }
                self.sent = first;
            }
            MessageKind::TaskCompleted => {
                let finished = self.completed.fetch_add(1, Ordering::Relaxed) + 1;
                if self.sent < self.total {
                    self.assign(m.sender, self.sent, ctx);
                    self.sent += 1;
                }
                if finished == self.total {
                    self.done.finish();
                }
            }
            _ => {}
        }
    }

    /// Sends task `i` to `to`.
    fn assign(&self, to: AgentId, i: u64, ctx: &SyncContext<'_>) {
        let Some(payload) = cycled(&self.payloads, i).cloned() else {
            return;
        };
        let task = Message::builder(ctx.id(), to)
            .kind(MessageKind::TaskAssigned)
            .priority(priority_of(i))
            .payload(payload)
            .build();
        if ctx.send(task).is_err() {
            self.done.fail();
        }
    }
}

/// A worker: checksums the task payload (CPU work), writes a summary
/// and a list of the agents involved into scratch objects (pooled when the
/// system has pools), and reports the checksum.
/// Returns whether the result was sent.
pub(crate) fn worker(m: Message, ctx: &mut SyncContext<'_>) -> bool {
    let crc = crc32(&m.payload);
    summarise(ctx, &m, crc);
    let result = Message::builder(ctx.id(), m.sender)
        .kind(MessageKind::TaskCompleted)
        .priority(m.priority)
        .correlation_id(m.id)
        .payload(Bytes::copy_from_slice(&crc.to_le_bytes()))
        .build();
    ctx.send(result).is_ok()
}

fn summarise(ctx: &SyncContext<'_>, m: &Message, crc: u32) {
    if let Some(pools) = ctx.pools() {
        let mut summary = pools.strings().pull();
        let mut involved = pools.uuid_lists().pull();
        fill(&mut summary, &mut involved, m, crc);
        std::hint::black_box((&*summary, &*involved));
        return;
    }
    let (mut summary, mut involved) = (String::new(), Vec::new());
    fill(&mut summary, &mut involved, m, crc);
    std::hint::black_box((&summary, &involved));
}

fn fill(summary: &mut String, involved: &mut Vec<uuid::Uuid>, m: &Message, crc: u32) {
    let _ = write!(
        summary,
        "task {} from {} checksum {crc:08x} ({} bytes)",
        m.id,
        m.sender,
        m.payload.len()
    );
    involved.push(*m.sender.as_uuid());
    if let Some(to) = m.recipient.agent() {
        involved.push(*to.as_uuid());
    }
}

/// CRC-32 (IEEE) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The `i`-th element of `items` taken round and round; `None` when empty.
pub(crate) fn cycled<T>(items: &[T], i: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok().filter(|&n| n > 0)?;
    items.get(usize::try_from(i % len).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn cycled_wraps_around_and_handles_empty() {
        let items = [10, 20, 30];
        assert_eq!(super::cycled(&items, 4), Some(&20));
        assert_eq!(super::cycled::<u8>(&[], 4), None);
    }
}
