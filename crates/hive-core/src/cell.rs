//! [`AgentCell`]: what the system knows about one running agent, shared
//! by its runner, the ticker, and handles that stop or inspect it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use event_listener::{Event, Listener};
use hive_messaging::MailboxProbe;
use hive_types::histogram::{AtomicHistogram, COARSE};
use hive_types::AgentId;

use crate::supervision::StopReason;
use crate::supervision::Watchdog;
use hive_types::sync::lock;

/// A runner that must be woken (rather than waiting on its mailbox).
pub(crate) trait Runner: Send + Sync {
    fn wake(&self);
}

/// How an agent is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopMode {
    /// Accept no new mail, handle what is waiting, then stop.
    Drain,
    /// Accept no new mail, stop after the current message; what is waiting
    /// is reported undelivered ([`UndeliveredReason::Cancelled`](crate::messaging::UndeliveredReason::Cancelled)).
    Cancel,
}

/// How an agent's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// The agent.
    pub agent: AgentId,
    /// Why it stopped.
    pub reason: StopReason,
    /// Messages it handled over its life.
    pub handled: u64,
    /// Messages that were waiting when it stopped and were reported
    /// undelivered instead of handled.
    pub dropped: u64,
}

// The stop request: a mode (none, drain, cancel) and whether it comes
// from the system's shutdown (the reason the agent will give).
const STOP_NONE: u8 = 0;
const STOP_DRAIN: u8 = 1;
const STOP_CANCEL: u8 = 2;
const STOP_MODE: u8 = 0b11;
const STOP_BY_SHUTDOWN: u8 = 0b100;

/// Per-agent counters; each has one writer (the agent's runner) except
/// `overruns`, which the ticker also bumps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Messages handed to a handler.
    pub(crate) handled: AtomicU64,
    /// Handler calls that returned (or panicked, or were cancelled).
    pub(crate) finished: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) overruns: AtomicU64,
}

/// Adds `n` to a counter only one thread writes (no locked instruction).
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Per-agent series for named or opted-in agents.
pub(crate) struct Observed {
    pub(crate) label: Arc<str>,
    /// Handler run times, nanoseconds.
    pub(crate) latency_ns: AtomicHistogram,
    pub(crate) handled: metrics::Counter,
    pub(crate) latency: metrics::Histogram,
    /// The ticker's last reading: (handled, milliseconds) and the rate.
    pub(crate) last: Mutex<(u64, u64)>,
    pub(crate) per_sec: AtomicU64,
}

impl Observed {
    pub(crate) fn new(label: Arc<str>) -> Self {
        let l = label.to_string();
        Observed {
            latency_ns: AtomicHistogram::new(COARSE),
            handled: metrics::counter!("hive_agent_handled_total", "agent" => l.clone()),
            latency: metrics::histogram!("hive_agent_handler_seconds", "agent" => l),
            label,
            last: Mutex::new((0, 0)),
            per_sec: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// One handler call took `took`.
    pub(crate) fn record(&self, took: Duration) {
        self.latency_ns
            .record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        self.handled.increment(1);
        self.latency.record(took.as_secs_f64());
    }

    /// Handled per second over the ticker's last interval.
    pub(crate) fn per_sec(&self) -> f64 {
        f64::from_bits(self.per_sec.load(Ordering::Relaxed))
    }
}

pub(crate) struct AgentCell {
    pub(crate) id: AgentId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) probe: MailboxProbe,
    pub(crate) watchdog: Option<Watchdog>,
    /// Boxed: most agents keep no per-agent series, and the cell stays
    /// small for them.
    pub(crate) observed: Option<Box<Observed>>,
    pub(crate) counters: Counters,
    /// Milliseconds since the system started (+1) at which the current
    /// handler started or last sent a heartbeat; 0 when none runs.
    pub(crate) handling_since: AtomicU64,
    /// The watchdog already reported the current handler.
    pub(crate) overrun_seen: AtomicBool,
    stop: AtomicU8,
    stopped: Mutex<Option<StopReport>>,
    /// Set by the one caller that retires the agent.
    ended: AtomicBool,
    done: Event,
    /// A runner that does not wait on its mailbox (a sync agent's), kept
    /// alive here while the agent runs and woken to see a stop request.
    runner: Mutex<Option<Arc<dyn Runner>>>,
    /// Ends an async agent's task (at shutdown, for a handler that never
    /// returns).
    abort: OnceLock<tokio::task::AbortHandle>,
}

impl AgentCell {
    pub(crate) fn new(
        id: AgentId,
        name: Option<Arc<str>>,
        probe: MailboxProbe,
        watchdog: Option<Watchdog>,
        observed: Option<Observed>,
    ) -> Self {
        AgentCell {
            id,
            name,
            probe,
            watchdog,
            observed: observed.map(Box::new),
            counters: Counters::default(),
            handling_since: AtomicU64::new(0),
            overrun_seen: AtomicBool::new(false),
            stop: AtomicU8::new(STOP_NONE),
            stopped: Mutex::new(None),
            ended: AtomicBool::new(false),
            done: Event::new(),
            runner: Mutex::new(None),
            abort: OnceLock::new(),
        }
    }

    pub(crate) fn set_abort(&self, abort: tokio::task::AbortHandle) {
        let _ = self.abort.set(abort);
    }

    /// Aborts an async agent's task; false for a sync agent.
    pub(crate) fn abort(&self) -> bool {
        match self.abort.get() {
            Some(a) => {
                a.abort();
                true
            }
            None => false,
        }
    }

    /// Whether an aborted task is gone (its mailbox dropped and counted).
    pub(crate) fn task_finished(&self) -> bool {
        self.abort.get().is_none_or(|a| a.is_finished())
    }

    /// Keeps `runner` alive while the agent runs; it is woken when the
    /// agent is asked to stop.
    pub(crate) fn attach(&self, runner: Arc<dyn Runner>) {
        *lock(&self.runner) = Some(runner);
    }

    fn wake(&self) {
        let runner = lock(&self.runner).clone();
        if let Some(runner) = runner {
            runner.wake();
        }
    }

    /// Nothing to do: no mail accepted for it (waiting, or still in a
    /// sender's batch), and every message handed out has been handled (its
    /// handler returned).
    pub(crate) fn is_quiet(&self) -> bool {
        self.probe.accepted() == 0
            && self.probe.delivered() == self.counters.finished.load(Ordering::Acquire)
    }

    /// A handler starts (at `now_ms` of the system clock).
    #[inline]
    pub(crate) fn begin(&self, now_ms: u64) {
        self.handling_since.store(now_ms + 1, Ordering::Relaxed);
    }

    /// The handler returned (or panicked, or was cancelled).
    #[inline]
    pub(crate) fn end(&self) {
        self.handling_since.store(0, Ordering::Relaxed);
        let f = &self.counters.finished;
        f.store(f.load(Ordering::Relaxed) + 1, Ordering::Release);
        if self.overrun_seen.load(Ordering::Relaxed) {
            self.overrun_seen.store(false, Ordering::Relaxed);
        }
    }

    /// How long the current handler has run, at `now_ms`.
    pub(crate) fn running_for(&self, now_ms: u64) -> Option<Duration> {
        match self.handling_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(now_ms.saturating_sub(since - 1))),
        }
    }

    /// Asks the agent to stop: closes its mailbox (no new mail) and wakes
    /// its runner. The strongest request wins.
    pub(crate) fn request_stop(&self, mode: StopMode) {
        let code = match mode {
            StopMode::Drain => STOP_DRAIN,
            StopMode::Cancel => STOP_CANCEL,
        };
        self.raise_stop(code);
    }

    /// The system shuts down: with `Drain`, the agent handles what its
    /// (closed) mailbox still holds; with `Cancel`, it stops after the
    /// current message and its mail is reported as `Shutdown`.
    pub(crate) fn request_shutdown(&self, mode: StopMode) {
        let code = match mode {
            StopMode::Drain => STOP_DRAIN,
            StopMode::Cancel => STOP_CANCEL,
        };
        self.raise_stop(code | STOP_BY_SHUTDOWN);
    }

    fn raise_stop(&self, code: u8) {
        let mut now = self.stop.load(Ordering::Acquire);
        loop {
            let mode = (now & STOP_MODE).max(code & STOP_MODE);
            let next = mode | ((now | code) & STOP_BY_SHUTDOWN);
            match self
                .stop
                .compare_exchange_weak(now, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(seen) => now = seen,
            }
        }
        self.probe.close();
        self.wake();
    }

    /// Whether waiting mail should be dropped rather than handled, and as
    /// what (`None`: handle it).
    pub(crate) fn cancelled(&self) -> Option<hive_messaging::UndeliveredReason> {
        let stop = self.stop.load(Ordering::Acquire);
        if stop & STOP_MODE != STOP_CANCEL {
            return None;
        }
        Some(if stop & STOP_BY_SHUTDOWN != 0 {
            hive_messaging::UndeliveredReason::Shutdown
        } else {
            hive_messaging::UndeliveredReason::Cancelled
        })
    }

    /// Why the agent stops once its mailbox ends.
    pub(crate) fn stop_reason(&self) -> StopReason {
        if self.stop.load(Ordering::Acquire) & STOP_BY_SHUTDOWN != 0 {
            StopReason::Shutdown
        } else {
            StopReason::Stopped
        }
    }

    /// Records the end of the agent's life and wakes whoever waits for it.
    pub(crate) fn finish(&self, reason: StopReason, dropped: u64) -> StopReport {
        let report = StopReport {
            agent: self.id,
            reason,
            handled: self.counters.handled.load(Ordering::Relaxed),
            dropped,
        };
        *lock(&self.stopped) = Some(report);
        lock(&self.runner).take();
        self.done.notify(usize::MAX);
        report
    }

    /// True for the first caller only: it retires the agent.
    pub(crate) fn claim_end(&self) -> bool {
        !self.ended.swap(true, Ordering::AcqRel)
    }

    /// Blocks until the agent stopped, at most `timeout`.
    pub(crate) fn wait_stopped(&self, timeout: Duration) -> Option<StopReport> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(r) = *lock(&self.stopped) {
                return Some(r);
            }
            let listener = self.done.listen();
            if let Some(r) = *lock(&self.stopped) {
                return Some(r);
            }
            if listener.wait_deadline(deadline).is_none() {
                return *lock(&self.stopped);
            }
        }
    }

    /// Awaits the agent's stop.
    pub(crate) async fn stopped(&self) -> StopReport {
        loop {
            if let Some(r) = *lock(&self.stopped) {
                return r;
            }
            let listener = self.done.listen();
            if let Some(r) = *lock(&self.stopped) {
                return r;
            }
            listener.await;
        }
    }
}
