//! Async agents: each runs as one task on the system's tokio runtime,
//! handling one message at a time, in the order its mailbox hands them out.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use hive_messaging::{Mailbox, UndeliveredReason};
use hive_types::{Message, ReceiptGuard};

use crate::agent::Agent;
use crate::cell::{bump, AgentCell};
use crate::context::Context;
use crate::inner::SystemInner;
use crate::supervision::StopReason;
use crate::supervision::{panic_message, AgentEventKind, Overrun, Supervisor, Verdict};

/// Messages handled in a row before the task yields to others on its thread.
const YIELD_EVERY: u32 = 64;

/// Times an agent in a stream of mail looks for the next batch (yielding to
/// other tasks in between) before it parks: parking and being woken cost
/// more than the few microseconds the next batch usually takes.
const LOOKS_BEFORE_PARKING: u32 = 32;

/// How a fresh instance is made after a restart.
pub(crate) type Factory<A> = Box<dyn Fn() -> A + Send + Sync>;

pin_project_lite::pin_project! {
    /// Awaits `work`, turning a panic in any of its polls into
    /// `Err(message)`. A struct rather than an `async fn`, so the handler's
    /// future is stored once in the agent's task, not twice.
    struct Guarded<F> {
        #[pin]
        work: F,
    }
}

fn guarded<F: Future>(work: F) -> Guarded<F> {
    Guarded { work }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let work = self.project().work;
        match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
}

/// What became of one handler call.
enum Outcome {
    Done,
    Panicked(String),
}

/// Bookkeeping before a handler runs; returns its start time when the
/// agent keeps per-agent latency.
#[inline]
fn begin(message: &Message, cell: &AgentCell, inner: &SystemInner) -> Option<Instant> {
    bump(&cell.counters.handled, 1);
    inner.record_latency(
        message.created_at,
        cell.counters
            .handled
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    cell.begin(inner.clock.coarse_ms());
    cell.observed.as_ref().map(|_| Instant::now())
}

/// Bookkeeping after a handler: `result` is `None` when the watchdog
/// cancelled it (the message still counts as handled).
#[inline]
fn end(
    result: Option<Result<(), String>>,
    started: Option<Instant>,
    cell: &AgentCell,
    inner: &SystemInner,
) -> Outcome {
    cell.end();
    if let (Some(observed), Some(started)) = (&cell.observed, started) {
        observed.record(started.elapsed());
    }
    match result {
        Some(Ok(())) => Outcome::Done,
        Some(Err(panic)) => Outcome::Panicked(panic),
        None => {
            cell.counters
                .overruns
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let running = cell.watchdog.map_or(Duration::ZERO, |w| w.limit);
            inner.emit(
                cell,
                AgentEventKind::Overrun {
                    running,
                    cancelled: true,
                },
            );
            Outcome::Done
        }
    }
}

pub(crate) struct TokioAgent<A> {
    pub(crate) agent: A,
    pub(crate) factory: Option<Factory<A>>,
    pub(crate) mailbox: Mailbox,
    pub(crate) ctx: Context,
    pub(crate) supervisor: Supervisor,
    /// Messages handled since the agent last parked.
    pub(crate) streak: u32,
}

impl<A: Agent> TokioAgent<A> {
    /// The agent's whole life: start, handle, restart after panics as the
    /// policy says, stop. Takes `&mut self`: an `async fn` taking `self` by
    /// value stores it twice in the task (argument and local).
    pub(crate) async fn run(&mut self) {
        let cell = self.ctx.cell.clone();
        let inner = self.ctx.system.inner.clone();
        let mut dropped = 0u64;
        let reason = 'life: loop {
            // Once per life: boxed, so its future does not widen the task.
            if let Err(panic) = Box::pin(guarded(self.agent.on_start(&mut self.ctx))).await {
                if !Box::pin(self.recover(&cell, &inner, panic)).await {
                    break 'life StopReason::Panicked;
                }
                continue 'life;
            }
            let mut in_a_row = 0u32;
            loop {
                if let Some(why) = cell.cancelled() {
                    dropped += self.mailbox.discard(why) as u64;
                    break 'life cell.stop_reason();
                }
                // The hot path stays in this loop (no future per message
                // beyond the handler's own): mail that is ready comes out
                // of `try_recv`; only an empty mailbox means waiting.
                let message = match self.mailbox.try_recv() {
                    Ok(Some(m)) => {
                        self.streak = self.streak.saturating_add(1);
                        m
                    }
                    Ok(None) => match self.wait_for_mail().await {
                        Some(m) => m,
                        None => break 'life cell.stop_reason(),
                    },
                    Err(_) => break 'life cell.stop_reason(),
                };
                let started = begin(&message, &cell, &inner);
                // Only a handler that returns settles the message's receipt
                // as handled; a panic, a watchdog's cancel or an abort fails
                // it (a durable transport delivers it again).
                let guard = ReceiptGuard::new(message.receipt.clone());
                #[cfg(feature = "tracing")]
                let span = inner.links.handle_span(&message, &cell);
                // Each arm makes the handler's future in its own await, so
                // the task holds one copy of it.
                let result = match cell.watchdog {
                    Some(w) if w.action == Overrun::Cancel => {
                        let work = guarded(self.agent.handle(message, &mut self.ctx));
                        #[cfg(feature = "tracing")]
                        let work = tracing::Instrument::instrument(work, span);
                        Box::pin(within(work, w.limit, &cell, &inner)).await
                    }
                    _ => {
                        let work = guarded(self.agent.handle(message, &mut self.ctx));
                        #[cfg(feature = "tracing")]
                        let work = tracing::Instrument::instrument(work, span);
                        Some(work.await)
                    }
                };
                if matches!(result, Some(Ok(()))) {
                    guard.done();
                } else {
                    drop(guard);
                }
                if let Outcome::Panicked(panic) = end(result, started, &cell, &inner) {
                    if !Box::pin(self.recover(&cell, &inner, panic)).await {
                        break 'life StopReason::Panicked;
                    }
                    continue 'life;
                }
                in_a_row += 1;
                if in_a_row == YIELD_EVERY {
                    in_a_row = 0;
                    tokio::task::yield_now().await;
                }
            }
        };
        let _ = Box::pin(guarded(self.agent.on_stop(&mut self.ctx, reason))).await;
        self.ctx.flush();
        let leftover = match reason {
            StopReason::Shutdown => UndeliveredReason::Shutdown,
            _ => UndeliveredReason::Cancelled,
        };
        dropped += self.mailbox.discard(leftover) as u64;
        inner.agent_stopped(&cell, reason, dropped);
    }

    /// Waits for mail when none is ready: an agent in a stream of mail
    /// looks again a few times first; then it flushes what it sent and
    /// parks. `None` once the mailbox is closed and empty.
    async fn wait_for_mail(&mut self) -> Option<Message> {
        if self.streak > 1 {
            for _ in 0..LOOKS_BEFORE_PARKING {
                tokio::task::yield_now().await;
                match self.mailbox.try_recv() {
                    Ok(Some(m)) => {
                        self.streak = self.streak.saturating_add(1);
                        return Some(m);
                    }
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
        }
        self.streak = 0;
        self.ctx.flush();
        self.mailbox.recv_async().await.ok()
    }

    /// After a panic: restart (after the backoff), or say the agent stops.
    async fn recover(&mut self, cell: &AgentCell, inner: &SystemInner, panic: String) -> bool {
        bump(&cell.counters.panics, 1);
        inner.count_panic(cell);
        inner.emit(cell, AgentEventKind::Panicked(panic));
        match self.supervisor.after_panic() {
            Verdict::Restart { after, restarts } => {
                if !after.is_zero() {
                    inner.sleep(after).await;
                }
                if let Some(factory) = &self.factory {
                    self.agent = factory();
                }
                bump(&cell.counters.restarts, 1);
                inner.emit(cell, AgentEventKind::Restarted { restarts, after });
                true
            }
            Verdict::Stop => {
                inner.emit(cell, AgentEventKind::Escalated);
                false
            }
        }
    }
}

/// Runs `work` unless it outlives the watchdog's limit (counted from the
/// handler's start or its last heartbeat): `None` when it was cancelled.
async fn within<T>(
    work: impl Future<Output = T>,
    limit: Duration,
    cell: &AgentCell,
    inner: &SystemInner,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let timer = inner.sleep(limit);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // A heartbeat may have moved the limit on.
            let now = inner.clock.precise_ms();
            let ran = cell.running_for(now).unwrap_or(limit);
            if ran >= limit {
                return Poll::Ready(None);
            }
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + (limit - ran));
        }
    })
    .await
}
