//! [`SwarmSystem`]: the running system, and the state its parts share.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use hive_cpubalance::Balancer;
use hive_messaging::{Communicator, Sender};
use hive_types::histogram::{AtomicHistogram, PRECISE};
use hive_types::{AgentId, HiveError, HiveResult, Message, Rejected, Timestamp};

use crate::agent::StopReason;
use crate::builder::{AllocationCounter, BatchBuffer, Optimizations};
use crate::cell::{AgentCell, StopMode, StopReport};
use crate::directory::Directory;
use crate::lifecycle::{LifecycleEvent, Subscribers};
use crate::on_balancer::BalancerAgent;
use crate::report::{Baselines, SystemReport};
use crate::runtime::{AgentRuntime, Clock, LazyTimer};
use crate::spawn::{AgentBuilder, AgentRef};
use crate::supervision::{AgentEventKind, Backoff, EventHook, Events, RestartPolicy, Watchdog};

/// One handled message in this many has its latency measured.
pub(crate) const LATENCY_SAMPLE: u64 = 8;

use hive_types::sync::lock;

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
    pub(crate) runtime: AgentRuntime,
    pub(crate) optimizations: Optimizations,
    pub(crate) send_timeout: Duration,
    pub(crate) defaults: Defaults,
    pub(crate) events: Option<EventHook>,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) max_agents: usize,
    pub(crate) max_observed: usize,
    pub(crate) allocations: Option<AllocationCounter>,
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
    backlog: Mutex<Vec<Weak<BalancerAgent>>>,
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
    pub(crate) ticker: Mutex<Option<crate::ticker::Ticker>>,
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
        })
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

    pub(crate) fn backlog(&self, agent: Weak<BalancerAgent>) {
        lock(&self.backlog).push(agent);
    }

    /// Retries the runs that found the balancer full (each tick).
    pub(crate) fn retry_backlog(&self) {
        let waiting: Vec<Weak<BalancerAgent>> = std::mem::take(&mut *lock(&self.backlog));
        for agent in waiting.iter().filter_map(Weak::upgrade) {
            agent.in_backlog.store(false, Ordering::Release);
            agent.schedule();
        }
    }
}

impl Drop for SystemInner {
    fn drop(&mut self) {
        self.communicator.close();
        self.runtime.shut_down();
    }
}

/// Stops the system when the last handle a user holds goes away.
struct Owner {
    inner: Weak<SystemInner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            crate::shutdown::abandon(&inner);
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
    _owner: Option<Arc<Owner>>,
}

impl SwarmSystem {
    /// A builder with every optimization on and default sizes.
    pub fn builder() -> crate::SwarmBuilder {
        crate::SwarmBuilder::default()
    }

    pub(crate) fn owner(inner: Arc<SystemInner>) -> Self {
        let owner = Arc::new(Owner {
            inner: Arc::downgrade(&inner),
        });
        SwarmSystem {
            inner,
            _owner: Some(owner),
        }
    }

    pub(crate) fn internal(inner: Arc<SystemInner>) -> Self {
        SwarmSystem {
            inner,
            _owner: None,
        }
    }

    /// Spawns an async agent with the system's defaults; see
    /// [`agent`](Self::agent) for names, restart policies and more.
    pub fn spawn<A: crate::Agent>(&self, agent: A) -> HiveResult<AgentRef> {
        self.agent().spawn(agent)
    }

    /// Spawns a sync agent (or closure) on the CPU balancer.
    pub fn spawn_sync<A: crate::SyncAgent>(&self, agent: A) -> HiveResult<AgentRef> {
        self.agent().spawn_sync(agent)
    }

    /// Options for the next agent: id, name, restart policy, watchdog,
    /// per-agent metrics.
    pub fn agent(&self) -> AgentBuilder<'_> {
        AgentBuilder::new(self)
    }

    /// A handle to the running agent `id`.
    pub fn agent_ref(&self, id: AgentId) -> Option<AgentRef> {
        self.inner
            .directory
            .get(&id)
            .map(|_| AgentRef::new(id, self.internal_handle()))
    }

    /// The running agent named `name`.
    pub fn lookup(&self, name: &str) -> Option<AgentRef> {
        let id = self.inner.directory.lookup(name)?;
        self.agent_ref(id)
    }

    /// Gives the running agent `id` the name `name` (an agent may have
    /// several); the name is freed when the agent stops.
    pub fn register_name(&self, id: AgentId, name: &str) -> HiveResult<()> {
        self.inner.directory.name(id, name)
    }

    /// Agents running now.
    pub fn agents(&self) -> usize {
        self.inner.directory.len()
    }

    pub(crate) fn internal_handle(&self) -> SwarmSystem {
        SwarmSystem::internal(self.inner.clone())
    }

    /// Sends `payload` to `to` as a `Normal` `Data` message from outside
    /// the swarm, waiting for room without limit.
    pub fn tell(&self, to: AgentId, payload: impl Into<Bytes>) -> Result<(), Rejected<Message>> {
        self.inner
            .outside
            .send(Message::new(AgentId::nil(), to, payload))
    }

    /// Asks `to` from outside the swarm and blocks for the reply, at most
    /// `timeout` in all. The request leaves at once (no flush needed); the
    /// reply is the agent's [`reply`](crate::Context::reply) to it. A reply
    /// later than `timeout` is dropped and counted as
    /// [`LateReply`](crate::messaging::UndeliveredReason::LateReply).
    ///
    /// Blocks the calling thread: from async code use
    /// [`ask_async`](Self::ask_async).
    pub fn ask(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        self.inner
            .outside
            .request(Message::request(AgentId::nil(), to, payload), timeout)
    }

    /// [`ask`](Self::ask) from async code (any executor).
    pub async fn ask_async(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        self.inner
            .outside
            .request_async(Message::request(AgentId::nil(), to, payload), timeout)
            .await
    }

    /// Stops agent `id` (see [`StopMode`]) and waits for it to end, at
    /// most `timeout`; blocks the calling thread.
    pub fn stop(&self, id: AgentId, mode: StopMode, timeout: Duration) -> HiveResult<StopReport> {
        let cell = self
            .inner
            .directory
            .get(&id)
            .ok_or(HiveError::UnknownAgent(id))?;
        cell.request_stop(mode);
        cell.wait_stopped(timeout).ok_or(HiveError::Timeout {
            what: "agent stop",
            after: timeout,
        })
    }

    /// [`stop`](Self::stop) from async code; wrap it in your timeout.
    pub async fn stop_async(&self, id: AgentId, mode: StopMode) -> HiveResult<StopReport> {
        let cell = self
            .inner
            .directory
            .get(&id)
            .ok_or(HiveError::UnknownAgent(id))?;
        cell.request_stop(mode);
        Ok(cell.stopped().await)
    }

    /// Sends `observer` a lifecycle message whenever an agent starts or
    /// stops (and heartbeats, if configured); see [`LifecycleEvent`].
    pub fn subscribe(&self, observer: AgentId) -> HiveResult<()> {
        if self.inner.directory.get(&observer).is_none() {
            return Err(HiveError::UnknownAgent(observer));
        }
        if self.inner.subscribers.add(observer) {
            Ok(())
        } else {
            Err(HiveError::Full {
                what: "lifecycle subscribers",
                capacity: self.inner.directory.len(),
            })
        }
    }

    /// A sender for code outside the agents (to inject work).
    pub fn sender(&self) -> Sender {
        self.inner.communicator.sender()
    }

    /// The communicator.
    pub fn communicator(&self) -> &Communicator {
        &self.inner.communicator
    }

    /// The CPU balancer.
    pub fn balancer(&self) -> &Balancer {
        &self.inner.balancer
    }

    /// The tokio runtime async agents run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.inner.runtime.handle()
    }

    /// The object pools (`None` when pools are turned off).
    #[cfg(feature = "mempool")]
    pub fn pools(&self) -> Option<&hive_mempool::SwarmMemoryPools> {
        self.inner.pools.as_ref()
    }

    /// The pool of message-batch buffers (`None` when pools are off).
    #[cfg(feature = "mempool")]
    pub fn batch_pool(&self) -> Option<&hive_mempool::Pool<BatchBuffer>> {
        self.inner.batch_pool.as_ref()
    }

    /// The hive recorder, if the system has one.
    #[cfg(feature = "metrics")]
    pub fn recorder(&self) -> Option<&hive_metrics::HiveRecorder> {
        self.inner.recorder.as_ref()
    }

    /// The optimizations in effect.
    pub fn optimizations(&self) -> Optimizations {
        self.inner.optimizations
    }

    /// Messages handed to agents' handlers so far.
    pub fn handled(&self) -> u64 {
        self.inner.handled()
    }

    /// Handler calls that panicked (each counted as handled too).
    pub fn handler_panics(&self) -> u64 {
        self.inner.handler_panics.load(Ordering::Relaxed)
    }

    /// The figures of the system's report, measured now.
    pub fn report(&self) -> SystemReport {
        crate::report::measure(&self.inner)
    }
}

impl fmt::Debug for SwarmSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmSystem")
            .field("agents", &self.inner.directory.len())
            .field("handled", &self.handled())
            .field("optimizations", &self.inner.optimizations)
            .finish()
    }
}
