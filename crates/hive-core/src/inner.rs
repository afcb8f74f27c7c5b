//! The state every part of a running system shares ([`SystemInner`]) and
//! the handle to it ([`SwarmSystem`]); the handle's methods live with what
//! they do (`system`, `spawn`, `shutdown`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hive_cpubalance::Balancer;
use hive_messaging::{Communicator, Sender};
use hive_types::histogram::{AtomicHistogram, PRECISE};
use hive_types::sync::lock;
use hive_types::{Message, MessageId, Timestamp};

use crate::cell::AgentCell;
use crate::directory::Directory;
use crate::lifecycle::{LifecycleEvent, Subscribers};
#[cfg(feature = "mempool")]
use crate::options::BatchBuffer;
use crate::options::{AllocationCounter, Optimizations};
use crate::procstat;
use crate::runtime::{AgentRuntime, Clock, LazyTimer};
use crate::supervision::{
    AgentEventKind, Backoff, EventHook, Events, RestartPolicy, StopReason, Watchdog,
};

/// A sync agent whose run found every balancer class full: the ticker
/// retries it (`on_balancer` implements this).
pub(crate) trait Backlogged: Send + Sync {
    /// Tries to queue its run again.
    fn retry(self: Arc<Self>);
}

/// One handled message in this many has its latency measured.
pub(crate) const LATENCY_SAMPLE: u64 = 8;

/// What agents get unless they are spawned with their own settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub(crate) restart: RestartPolicy,
    pub(crate) backoff: Backoff,
    pub(crate) watchdog: Option<Watchdog>,
}

/// The parts a builder hands over.
pub(crate) struct Parts {
    pub(crate) communicator: Communicator,
    pub(crate) balancer: Balancer,
    #[cfg(feature = "mempool")]
    pub(crate) pools: Option<hive_mempool::SwarmMemoryPools>,
    #[cfg(feature = "mempool")]
    pub(crate) batch_pool: Option<hive_mempool::Pool<BatchBuffer>>,
    #[cfg(feature = "metrics")]
    pub(crate) recorder: Option<hive_metrics::HiveRecorder>,
    #[cfg(feature = "metrics")]
    pub(crate) watch: Option<crate::watch::Watch>,
    pub(crate) runtime: AgentRuntime,
    pub(crate) optimizations: Optimizations,
    pub(crate) send_timeout: Duration,
    pub(crate) defaults: Defaults,
    pub(crate) events: Option<EventHook>,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) max_agents: usize,
    pub(crate) max_observed: usize,
    pub(crate) allocations: Option<AllocationCounter>,
    #[cfg(feature = "tracing")]
    pub(crate) trace_links: usize,
    #[cfg(feature = "tracing")]
    pub(crate) trace_propagator: Option<Arc<dyn crate::trace::TracePropagator>>,
}

pub(crate) struct SystemInner {
    pub(crate) communicator: Communicator,
    pub(crate) balancer: Balancer,
    #[cfg(feature = "mempool")]
    pub(crate) pools: Option<hive_mempool::SwarmMemoryPools>,
    #[cfg(feature = "mempool")]
    pub(crate) batch_pool: Option<hive_mempool::Pool<BatchBuffer>>,
    #[cfg(feature = "metrics")]
    pub(crate) recorder: Option<hive_metrics::HiveRecorder>,
    /// Measured windows and regression alerts (the ticker feeds it).
    #[cfg(feature = "metrics")]
    pub(crate) watch: Option<crate::watch::Watch>,
    /// The metrics endpoint, with `serve`.
    #[cfg(feature = "http")]
    pub(crate) server: Mutex<Option<hive_metrics::MetricsServer>>,
    pub(crate) runtime: AgentRuntime,
    pub(crate) clock: Clock,
    pub(crate) optimizations: Optimizations,
    /// How long an agent's send or submit waits for room.
    pub(crate) send_timeout: Duration,
    pub(crate) defaults: Defaults,
    pub(crate) directory: Directory,
    pub(crate) subscribers: Subscribers,
    /// Sends from outside the agents: handles' tells and asks, lifecycle.
    pub(crate) outside: Sender,
    pub(crate) events: Events,
    pub(crate) heartbeat: Option<Duration>,
    /// Sync agents whose run found every balancer class full; each at most
    /// once, so at most one entry per agent.
    backlog: Mutex<Vec<Weak<dyn Backlogged>>>,
    /// Creation-to-handling latency of every handled message, microseconds.
    pub(crate) latency_us: AtomicHistogram,
    /// Messages handled by agents that have stopped.
    retired_handled: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    handled_metric: metrics::Counter,
    pub(crate) baselines: Baselines,
    pub(crate) allocations: Option<AllocationCounter>,
    /// (seconds since start, resident bytes), one per tick, bounded.
    pub(crate) rss_samples: Mutex<Vec<(f64, u64)>>,
    pub(crate) ticker: Mutex<Option<Ticker>>,
    /// Spans that sent messages not yet handled (feature `tracing`).
    #[cfg(feature = "tracing")]
    pub(crate) links: crate::trace::Links,
}

impl SystemInner {
    pub(crate) fn new(parts: Parts) -> Arc<SystemInner> {
        let outside = parts.communicator.sender();
        Arc::new(SystemInner {
            outside,
            communicator: parts.communicator,
            balancer: parts.balancer,
            #[cfg(feature = "mempool")]
            pools: parts.pools,
            #[cfg(feature = "mempool")]
            batch_pool: parts.batch_pool,
            #[cfg(feature = "metrics")]
            recorder: parts.recorder,
            #[cfg(feature = "metrics")]
            watch: parts.watch,
            #[cfg(feature = "http")]
            server: Mutex::new(None),
            runtime: parts.runtime,
            clock: Clock::new(),
            optimizations: parts.optimizations,
            send_timeout: parts.send_timeout,
            defaults: parts.defaults,
            directory: Directory::new(parts.max_agents, parts.max_observed),
            subscribers: Subscribers::new(parts.max_agents),
            events: Events(parts.events),
            heartbeat: parts.heartbeat,
            backlog: Mutex::new(Vec::new()),
            latency_us: AtomicHistogram::new(PRECISE),
            retired_handled: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            handled_metric: metrics::counter!("hive_swarm_messages_total"),
            baselines: Baselines::now(parts.allocations),
            allocations: parts.allocations,
            rss_samples: Mutex::new(Vec::new()),
            ticker: Mutex::new(None),
            #[cfg(feature = "tracing")]
            links: crate::trace::Links::new(parts.trace_links, parts.trace_propagator),
        })
    }

    /// Remembers the current span as the parent of `message`'s handling,
    /// or gives a message to another process its trace context (feature
    /// `tracing`; nothing otherwise).
    #[inline]
    pub(crate) fn trace_send(&self, message: &mut Message) {
        #[cfg(feature = "tracing")]
        self.links.remember(message, |message| {
            message
                .recipient
                .agent()
                .is_some_and(|a| self.communicator.is_local(a))
        });
        #[cfg(not(feature = "tracing"))]
        let _ = message;
    }

    /// Passes `result` on; on an error, forgets what
    /// [`trace_send`](Self::trace_send) remembered for message `id`.
    #[inline]
    pub(crate) fn trace_result<T, E>(&self, id: MessageId, result: Result<T, E>) -> Result<T, E> {
        #[cfg(feature = "tracing")]
        if result.is_err() {
            self.links.forget(id);
        }
        #[cfg(not(feature = "tracing"))]
        let _ = id;
        result
    }

    /// An async request, in a `hive.ask` span with feature `tracing` (the
    /// request remembers the span).
    pub(crate) async fn request_async(
        &self,
        sender: &Sender,
        mut request: Message,
        timeout: Duration,
    ) -> hive_types::HiveResult<Message> {
        #[cfg(feature = "tracing")]
        let span = crate::trace::ask_span(&request);
        let id = request.id;
        let asked = async {
            self.trace_send(&mut request);
            let asked = sender.request_async(request, timeout).await;
            self.trace_result(id, asked)
        };
        #[cfg(feature = "tracing")]
        let asked = tracing::Instrument::instrument(asked, span);
        asked.await
    }

    /// A blocking request, in a `hive.ask` span with feature `tracing`.
    pub(crate) fn request(
        &self,
        sender: &Sender,
        mut request: Message,
        timeout: Duration,
    ) -> hive_types::HiveResult<Message> {
        #[cfg(feature = "tracing")]
        let span = crate::trace::ask_span(&request);
        #[cfg(feature = "tracing")]
        let _entered = span.enter();
        let id = request.id;
        self.trace_send(&mut request);
        let asked = sender.request(request, timeout);
        self.trace_result(id, asked)
    }

    /// Records a handled message: every one counts; one in
    /// [`LATENCY_SAMPLE`] has its creation-to-handling latency read (a clock
    /// read costs about as much as handing a message out) and recorded with
    /// that weight, which keeps the percentiles while sparing the clock.
    #[inline]
    pub(crate) fn record_latency(&self, created: Timestamp, handled: u64) {
        if handled.is_multiple_of(LATENCY_SAMPLE) {
            let age = Timestamp::now()
                .as_micros()
                .saturating_sub(created.as_micros());
            self.latency_us.record_n(age, LATENCY_SAMPLE);
        }
        self.handled_metric.increment(1);
    }

    pub(crate) fn count_panic(&self, cell: &AgentCell) {
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("hive_agent_panics_total").increment(1);
        if let Some(o) = &cell.observed {
            metrics::counter!("hive_agent_panics_total", "agent" => o.label.to_string())
                .increment(1);
        }
    }

    pub(crate) fn emit(&self, cell: &AgentCell, kind: AgentEventKind) {
        if matches!(kind, AgentEventKind::Restarted { .. }) {
            metrics::counter!("hive_agent_restarts_total").increment(1);
        }
        self.events.emit(cell.id, cell.name.as_ref(), kind);
    }

    /// A timer on the agents' runtime, started now.
    pub(crate) fn sleep(&self, after: Duration) -> tokio::time::Sleep {
        self.runtime.sleep(after)
    }

    /// A timer on the agents' runtime that starts when first polled.
    pub(crate) fn timer(&self, after: Duration) -> LazyTimer {
        self.runtime.timer(after)
    }

    /// Messages handled so far, by every agent past and present.
    pub(crate) fn handled(&self) -> u64 {
        let live: u64 = self
            .directory
            .all()
            .iter()
            .map(|c| c.counters.handled.load(Ordering::Relaxed))
            .sum();
        live + self.retired_handled.load(Ordering::Relaxed)
    }

    /// An agent's life ended: the directory forgets it, subscribers and
    /// the event hook hear of it, whoever waits for it wakes.
    pub(crate) fn agent_stopped(&self, cell: &AgentCell, reason: StopReason, dropped: u64) {
        if !cell.claim_end() {
            return;
        }
        self.retired_handled.fetch_add(
            cell.counters.handled.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.directory.remove(&cell.id);
        self.subscribers.remove(&cell.id);
        // Waiters wake only once its id and names are free.
        cell.finish(reason, dropped);
        self.emit(cell, AgentEventKind::Stopped(reason));
        self.subscribers.notify(
            &self.outside,
            Some(cell.id),
            &LifecycleEvent::Left {
                agent: cell.id,
                name: cell.name.as_ref().map(|n| n.to_string()),
                reason,
            },
        );
    }

    pub(crate) fn backlog(&self, agent: Weak<dyn Backlogged>) {
        lock(&self.backlog).push(agent);
    }

    /// Retries the runs that found the balancer full (each tick).
    pub(crate) fn retry_backlog(&self) {
        let waiting: Vec<Weak<dyn Backlogged>> = std::mem::take(&mut *lock(&self.backlog));
        for agent in waiting.iter().filter_map(Weak::upgrade) {
            agent.retry();
        }
    }
}

impl Drop for SystemInner {
    fn drop(&mut self) {
        self.communicator.close();
        self.runtime.shut_down();
    }
}

/// Where the figures start from: taken when the system is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baselines {
    pub(crate) started: Instant,
    pub(crate) rss: Option<u64>,
    pub(crate) cpu: Option<Duration>,
    pub(crate) allocations: Option<u64>,
}

impl Baselines {
    pub(crate) fn now(counter: Option<AllocationCounter>) -> Self {
        Baselines {
            started: Instant::now(),
            rss: procstat::resident_bytes(),
            cpu: procstat::cpu_time(),
            allocations: counter.map(|c| c()),
        }
    }
}

/// The ticker thread (see `ticker`): stopped and joined when dropped.
pub(crate) struct Ticker {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // The last handle to the system may be dropped on the ticker
            // thread itself (during a tick): it then ends on its own.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// A swarm: communicator, pools, balancer, recorder and the agents running
/// on them. Cloning makes another handle; when the last handle you made is
/// dropped without [`shutdown`](Self::shutdown), the system stops at once
/// (mail still waiting is reported undelivered).
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct SwarmSystem {
    pub(crate) inner: Arc<SystemInner>,
    /// Present in handles users hold (held for its `Drop`); absent in the
    /// ones agents hold, so an agent's handle does not keep the system alive.
    pub(crate) _owner: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl SwarmSystem {
    /// A handle for agents and internal use: it does not keep the system
    /// alive.
    pub(crate) fn internal(inner: Arc<SystemInner>) -> Self {
        SwarmSystem {
            inner,
            _owner: None,
        }
    }

    pub(crate) fn internal_handle(&self) -> SwarmSystem {
        SwarmSystem::internal(self.inner.clone())
    }
}
