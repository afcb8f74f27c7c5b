//! Settling and shutting down: [`SwarmSystem::quiesce`],
//! [`SwarmSystem::shutdown`] and its [`ShutdownReport`].

use std::time::{Duration, Instant};

use hive_messaging::{Undelivered, UndeliveredReason};

use crate::cell::StopMode;
use crate::inner::{SwarmSystem, SystemInner};
use crate::supervision::StopReason;
use hive_types::sync::lock;

/// What a shutdown left behind. Every message the communicator accepted
/// over the system's life is in one of `handled`, `replies`, `forwarded`
/// or `undelivered`; the counts come from the statistics, not from the
/// (bounded) store of undelivered messages.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every agent became idle within the drain timeout.
    pub drained: bool,
    /// Messages the communicator accepted over the system's life.
    pub accepted: u64,
    /// Messages handed to agents' handlers.
    pub handled: u64,
    /// Replies handed to waiting asks.
    pub replies: u64,
    /// Messages taken by transport links to other processes.
    pub forwarded: u64,
    /// Messages not delivered, whatever the reason.
    pub undelivered: u64,
    /// The same by reason (only reasons that occurred).
    pub undelivered_by_reason: Vec<(UndeliveredReason, u64)>,
    /// The undelivered messages still kept (the store is bounded; see
    /// `CommunicatorConfig::dead_letter_capacity`).
    pub undelivered_messages: Vec<Undelivered>,
    /// Agents whose handler was still running when the time was up: async
    /// ones were aborted, sync ones left to finish on their thread. Their
    /// message counts as handled.
    pub stuck_agents: usize,
    /// Agents that stopped during the shutdown.
    pub stopped_agents: usize,
}

impl SwarmSystem {
    /// Waits until every agent is idle with an empty mailbox and the
    /// balancer has nothing queued (or `timeout`); returns which.
    pub fn quiesce(&self, timeout: Duration) -> bool {
        quiesce_until(&self.inner, Instant::now() + timeout)
    }

    /// Graceful shutdown, blocking the calling thread (from async code use
    /// [`shutdown_async`](Self::shutdown_async)):
    ///
    /// 1. lets the swarm settle: agents handle their mail, and may still
    ///    message each other, until all are idle or `drain_timeout` passes;
    /// 2. closes the communicator: new sends are refused (the message
    ///    handed back), what senders hold is delivered, every mailbox closes;
    /// 3. agents handle what is left and stop (`on_stop` runs, reason
    ///    `Shutdown`); when the time is up, agents still running stop after
    ///    their current message and their mail is reported undelivered;
    /// 4. the balancer finishes its accepted tasks and the runtime stops.
    ///
    /// Handlers that never return are left behind (async ones aborted)
    /// rather than waited for without end.
    pub fn shutdown(&self, drain_timeout: Duration) -> ShutdownReport {
        shutdown(&self.inner, drain_timeout)
    }

    /// [`shutdown`](Self::shutdown) from async code: the waiting runs on
    /// a blocking thread of the current runtime.
    pub async fn shutdown_async(&self, drain_timeout: Duration) -> ShutdownReport {
        let inner = self.inner.clone();
        let run = move || shutdown(&inner, drain_timeout);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => match handle.spawn_blocking(run).await {
                Ok(report) => report,
                Err(_) => shutdown(&self.inner, Duration::ZERO),
            },
            Err(_) => run(),
        }
    }
}

fn all_quiet(inner: &SystemInner) -> bool {
    inner.directory.all().iter().all(|c| c.is_quiet()) && inner.balancer.queued() == 0
}

pub(crate) fn quiesce_until(inner: &SystemInner, deadline: Instant) -> bool {
    loop {
        inner.communicator.flush_all();
        // The ticker may be stopped (shutdown): retry refused runs here.
        inner.retry_backlog();
        if all_quiet(inner) {
            // Twice quiet in a row: nothing was in flight between checks.
            std::thread::sleep(Duration::from_millis(2));
            if all_quiet(inner) {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until every agent stopped (or `deadline`); returns whether all did.
fn wait_stopped(inner: &SystemInner, deadline: Instant) -> bool {
    loop {
        inner.retry_backlog();
        if inner.directory.len() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn shutdown(inner: &SystemInner, drain_timeout: Duration) -> ShutdownReport {
    let started = Instant::now();
    let deadline = started + drain_timeout;
    let running_before = inner.directory.len();
    let drained = quiesce_until(inner, deadline);
    // Agents end with reason Shutdown once their closed mailbox is empty.
    for cell in inner.directory.all() {
        cell.request_shutdown(StopMode::Drain);
    }
    inner.communicator.close();
    if !wait_stopped(inner, deadline) {
        for cell in inner.directory.all() {
            cell.request_shutdown(StopMode::Cancel);
        }
        // A moment for handlers to return after their current message.
        let grace = Instant::now()
            + Duration::from_millis(100).min(drain_timeout.max(Duration::from_millis(10)));
        wait_stopped(inner, grace);
    }
    let stuck_cells = inner.directory.all();
    for cell in &stuck_cells {
        cell.abort();
        inner.agent_stopped(cell, StopReason::Shutdown, 0);
    }
    // An aborted task drops its mailbox (reporting its mail) when the
    // runtime gets to it: wait for that, briefly, so the counts are whole.
    let counted = Instant::now() + Duration::from_secs(1);
    while !stuck_cells.iter().all(|c| c.task_finished()) && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stuck = stuck_cells.len();
    lock(&inner.ticker).take();
    #[cfg(feature = "http")]
    lock(&inner.server).take(); // stops serving and joins its thread
    let left = deadline.saturating_duration_since(Instant::now());
    inner
        .balancer
        .shutdown_timeout(left.max(Duration::from_millis(100)));
    inner.runtime.shut_down();
    let stats = inner.communicator.stats();
    let handled = inner.handled();
    ShutdownReport {
        drained,
        accepted: stats.sent,
        handled,
        replies: stats.replies,
        forwarded: stats
            .delivered
            .saturating_sub(handled)
            .saturating_sub(stats.replies),
        undelivered: stats.undeliverable,
        undelivered_by_reason: stats
            .undeliverable_by_reason
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        undelivered_messages: inner.communicator.take_undelivered(),
        stuck_agents: stuck,
        stopped_agents: running_before,
    }
}

/// The last handle a user held is gone: stop everything at once, waiting
/// for nothing (this may run on any thread, async or not).
pub(crate) fn abandon(inner: &SystemInner) {
    for cell in inner.directory.all() {
        cell.request_shutdown(StopMode::Cancel);
    }
    inner.communicator.close();
    inner.runtime.shut_down();
}
