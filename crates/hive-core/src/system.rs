//! [`SwarmSystem`]: the document's `OptimizedSwarmSystem`, and its builder.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use hive_cpubalance::{Balancer, BalancerConfig};
use hive_messaging::{Communicator, CommunicatorConfig, Sender};
use hive_types::histogram::{AtomicHistogram, PRECISE};
use hive_types::{AgentId, HiveResult, Message, NoRecycling, SharedRecycler, Timestamp};

use crate::agent::{age_micros, Agent, AgentRuntime};
use crate::report::{Baselines, SystemReport};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which of the document's optimizations are on (all by default). Turning
/// one off is how the report's ablation table measures what it buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optimizations {
    /// Per-destination batching (off: every message travels alone).
    pub batching: bool,
    /// Compression of frames that leave the process (off: uncompressed).
    pub compression: bool,
    /// Reuse of batch buffers and pooled scratch objects (off: allocate).
    pub pools: bool,
    /// Load-aware placement and priorities on the balancer (off: round
    /// robin, every task `Normal`).
    pub load_aware: bool,
}

impl Optimizations {
    /// The frame encoder for transports: zstd when compression is on,
    /// uncompressed frames when it is off.
    #[cfg(feature = "wire")]
    pub fn encoder_config(&self) -> hive_messaging::wire::EncoderConfig {
        if self.compression {
            hive_messaging::wire::EncoderConfig::default()
        } else {
            hive_messaging::wire::EncoderConfig::uncompressed()
        }
    }
}

impl Default for Optimizations {
    fn default() -> Self {
        Optimizations {
            batching: true,
            compression: true,
            pools: true,
            load_aware: true,
        }
    }
}

/// A batch's message buffer, the type messaging recycles.
type BatchBuffer = std::collections::VecDeque<Message>;

/// How allocations are counted, when the program installed a counting
/// global allocator: a function returning allocations so far.
pub type AllocationCounter = fn() -> u64;

/// Builds a [`SwarmSystem`]; see [`SwarmSystem::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SwarmBuilder {
    communicator: CommunicatorConfig,
    balancer: BalancerConfig,
    #[cfg(feature = "mempool")]
    pools: hive_mempool::SwarmPoolsConfig,
    #[cfg(feature = "mempool")]
    batch_pool: hive_mempool::PoolConfig,
    #[cfg(feature = "metrics")]
    recorder: Option<hive_metrics::HiveRecorder>,
    #[cfg(feature = "metrics")]
    install_recorder: bool,
    monitor_interval: Duration,
    send_timeout: Duration,
    optimizations: Optimizations,
    allocations: Option<AllocationCounter>,
}

impl Default for SwarmBuilder {
    fn default() -> Self {
        SwarmBuilder {
            communicator: CommunicatorConfig::default(),
            balancer: BalancerConfig::default(),
            #[cfg(feature = "mempool")]
            pools: hive_mempool::SwarmPoolsConfig::default(),
            #[cfg(feature = "mempool")]
            batch_pool: hive_mempool::PoolConfig::new("message_batches", 1024)
                .max_retained_bytes(4 << 20),
            #[cfg(feature = "metrics")]
            recorder: Some(hive_metrics::HiveRecorder::new()),
            #[cfg(feature = "metrics")]
            install_recorder: false,
            monitor_interval: Duration::from_millis(100),
            send_timeout: Duration::from_secs(1),
            optimizations: Optimizations::default(),
            allocations: None,
        }
    }
}

impl SwarmBuilder {
    /// The communicator's configuration.
    pub fn communicator(mut self, config: CommunicatorConfig) -> Self {
        self.communicator = config;
        self
    }

    /// The balancer's configuration.
    pub fn balancer(mut self, config: BalancerConfig) -> Self {
        self.balancer = config;
        self
    }

    /// The pools' sizes.
    #[cfg(feature = "mempool")]
    pub fn pools(mut self, config: hive_mempool::SwarmPoolsConfig) -> Self {
        self.pools = config;
        self
    }

    /// The pool of message-batch buffers that plugs into the communicator's
    /// buffer seam (default: up to 1024 idle buffers, 4 MiB retained).
    #[cfg(feature = "mempool")]
    pub fn batch_pool(mut self, config: hive_mempool::PoolConfig) -> Self {
        self.batch_pool = config;
        self
    }

    /// Records into `recorder` (for example one you already installed).
    #[cfg(feature = "metrics")]
    pub fn recorder(mut self, recorder: hive_metrics::HiveRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// No hive recorder: components record to whatever `metrics` recorder
    /// is installed (or none); the report then omits metric-based figures.
    #[cfg(feature = "metrics")]
    pub fn no_recorder(mut self) -> Self {
        self.recorder = None;
        self
    }

    /// Installs the hive recorder as the global `metrics` recorder at build.
    #[cfg(feature = "metrics")]
    pub fn install_recorder(mut self) -> Self {
        self.install_recorder = true;
        self
    }

    /// How often the monitor ticks (pool maintenance, balancer sampling,
    /// memory samples).
    pub fn monitor_interval(mut self, interval: Duration) -> Self {
        self.monitor_interval = interval;
        self
    }

    /// How long an agent's `send` or `submit` waits for room before it
    /// hands the message or task back (1 s by default).
    pub fn agent_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Turns optimizations on or off (for the ablation table).
    pub fn optimizations(mut self, optimizations: Optimizations) -> Self {
        self.optimizations = optimizations;
        self
    }

    /// Counts allocations with `counter` (a counting global allocator the
    /// program installed), so the report can give allocations per message.
    pub fn allocation_counter(mut self, counter: AllocationCounter) -> Self {
        self.allocations = Some(counter);
        self
    }

    /// Starts the system.
    pub fn build(self) -> HiveResult<SwarmSystem> {
        let opt = self.optimizations;
        if self.monitor_interval.is_zero() {
            return Err(hive_types::HiveError::config(
                "monitor_interval",
                "must be more than zero",
            ));
        }
        #[cfg(feature = "metrics")]
        if let (true, Some(r)) = (self.install_recorder, &self.recorder) {
            r.install()?;
        }
        let mut communicator_config = self.communicator;
        if !opt.batching {
            communicator_config.max_messages = 1;
        }
        // Batch buffers: from a hive-mempool pool when pools are on (or a
        // plain bounded recycler without the mempool feature), else fresh.
        #[cfg(feature = "mempool")]
        let batch_pool = match opt.pools {
            true => Some(hive_mempool::Pool::<BatchBuffer>::new(self.batch_pool)?),
            false => None,
        };
        #[cfg(feature = "mempool")]
        let recycler: SharedRecycler<BatchBuffer> = match &batch_pool {
            Some(pool) => Arc::new(pool.clone()),
            None => Arc::new(NoRecycling),
        };
        #[cfg(not(feature = "mempool"))]
        let recycler: SharedRecycler<BatchBuffer> = match opt.pools {
            true => Arc::new(hive_types::BoundedRecycler::new(
                communicator_config.recycled_batches,
                1 << 20,
            )),
            false => Arc::new(NoRecycling),
        };
        let communicator = Communicator::with_recycler(communicator_config, recycler)?;
        let mut balancer_config = self.balancer;
        // The system's monitor samples and scales the balancer each tick.
        balancer_config.monitor_interval = None;
        balancer_config.load_aware = opt.load_aware;
        balancer_config.priorities = opt.load_aware;
        let balancer = Balancer::new(balancer_config)?;
        #[cfg(feature = "mempool")]
        let pools = if opt.pools {
            Some(hive_mempool::SwarmMemoryPools::new(self.pools)?)
        } else {
            None
        };
        let inner = Arc::new(SystemInner {
            communicator,
            balancer,
            #[cfg(feature = "mempool")]
            pools,
            #[cfg(feature = "mempool")]
            batch_pool,
            #[cfg(feature = "metrics")]
            recorder: self.recorder,
            optimizations: opt,
            send_timeout: self.send_timeout,
            agents: Mutex::new(HashMap::new()),
            backlog: Mutex::new(Vec::new()),
            latency_us: AtomicHistogram::new(PRECISE),
            handled: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            baselines: Baselines::now(self.allocations),
            allocations: self.allocations,
            rss_samples: Mutex::new(Vec::new()),
            monitor: Mutex::new(None),
        });
        crate::monitor::start(&inner, self.monitor_interval)?;
        Ok(SwarmSystem { inner })
    }
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
    pub(crate) optimizations: Optimizations,
    /// How long an agent's send or submit waits for room.
    pub(crate) send_timeout: Duration,
    pub(crate) agents: Mutex<HashMap<AgentId, Arc<AgentRuntime>>>,
    /// Agents whose run found every balancer class full; each at most once,
    /// so at most one entry per agent.
    backlog: Mutex<Vec<Weak<AgentRuntime>>>,
    /// Creation-to-handling latency of every handled message, microseconds.
    pub(crate) latency_us: AtomicHistogram,
    pub(crate) handled: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) baselines: Baselines,
    pub(crate) allocations: Option<AllocationCounter>,
    /// (seconds since start, resident bytes), one per monitor tick, bounded.
    pub(crate) rss_samples: Mutex<Vec<(f64, u64)>>,
    pub(crate) monitor: Mutex<Option<crate::monitor::Monitor>>,
}

impl SystemInner {
    pub(crate) fn record_latency(&self, created: Timestamp) {
        self.latency_us.record(age_micros(created));
    }

    pub(crate) fn count_handled(&self, n: usize) {
        if n > 0 {
            self.handled.fetch_add(n as u64, Ordering::Relaxed);
            metrics::counter!("hive_swarm_messages_total").increment(n as u64);
        }
    }

    pub(crate) fn count_panic(&self) {
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("hive_swarm_handler_panics_total").increment(1);
    }

    pub(crate) fn backlog(&self, agent: Weak<AgentRuntime>) {
        lock(&self.backlog).push(agent);
    }

    /// Retries the runs that found the balancer full (each monitor tick).
    pub(crate) fn retry_backlog(&self) {
        let waiting: Vec<Weak<AgentRuntime>> = std::mem::take(&mut *lock(&self.backlog));
        for agent in waiting.iter().filter_map(Weak::upgrade) {
            agent.in_backlog.store(false, Ordering::Release);
            agent.schedule();
        }
    }
}

/// A swarm: communicator, pools, balancer and recorder wired together, and
/// agents that run on the balancer. Cloning makes another handle.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct SwarmSystem {
    pub(crate) inner: Arc<SystemInner>,
}

impl SwarmSystem {
    /// A builder with every optimization on and default sizes.
    pub fn builder() -> SwarmBuilder {
        SwarmBuilder::default()
    }

    pub(crate) fn from_inner(inner: Arc<SystemInner>) -> Self {
        SwarmSystem { inner }
    }

    /// Starts an agent with a fresh id.
    pub fn spawn_agent(&self, agent: impl Agent) -> HiveResult<AgentId> {
        self.spawn_agent_with_id(AgentId::random(), agent)
    }

    /// Starts an agent under `id`.
    pub fn spawn_agent_with_id(&self, id: AgentId, agent: impl Agent) -> HiveResult<AgentId> {
        let mailbox = self.inner.communicator.register(id)?;
        let runtime = AgentRuntime::start(&self.inner, id, mailbox, Box::new(agent))?;
        lock(&self.inner.agents).insert(id, runtime);
        Ok(id)
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

    /// Messages handled by agents so far.
    pub fn handled(&self) -> u64 {
        self.inner.handled.load(Ordering::Relaxed)
    }

    /// Handler calls that panicked (each lost its message; agents go on).
    pub fn handler_panics(&self) -> u64 {
        self.inner.handler_panics.load(Ordering::Relaxed)
    }

    /// The figures of the document's table, measured now.
    pub fn report(&self) -> SystemReport {
        crate::report::measure(&self.inner)
    }

    /// Waits until every agent is idle with an empty mailbox (or `timeout`).
    pub fn quiesce(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.inner.communicator.flush_all();
            // The monitor may be stopped (shutdown): retry refused runs here.
            self.inner.retry_backlog();
            let agents: Vec<Arc<AgentRuntime>> =
                lock(&self.inner.agents).values().cloned().collect();
            if agents.iter().all(|a| a.is_quiet()) && self.inner.balancer.queued() == 0 {
                // Twice quiet in a row: nothing was in flight between checks.
                std::thread::sleep(Duration::from_millis(2));
                if agents.iter().all(|a| a.is_quiet()) && self.inner.balancer.queued() == 0 {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Graceful shutdown: lets agents finish what is queued (up to
    /// `drain_timeout`), closes the communicator (which delivers what
    /// senders hold and refuses new sends), runs every accepted task, stops
    /// the workers, and reports what could not be delivered.
    pub fn shutdown(&self, drain_timeout: Duration) -> ShutdownReport {
        let drained = self.quiesce(drain_timeout);
        self.inner.communicator.close();
        lock(&self.inner.monitor).take();
        // Agents consume what close() delivered.
        let _ = self.quiesce(drain_timeout);
        self.inner.balancer.shutdown();
        let undelivered = self.inner.communicator.take_undelivered();
        let queued_left: usize = self
            .inner
            .communicator
            .stats()
            .mailboxes
            .iter()
            .map(|m| m.queued)
            .sum();
        ShutdownReport {
            drained,
            handled: self.handled(),
            undelivered: undelivered.len() as u64 + queued_left as u64,
            undelivered_messages: undelivered,
        }
    }
}

impl fmt::Debug for SwarmSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmSystem")
            .field("agents", &lock(&self.inner.agents).len())
            .field("handled", &self.handled())
            .field("optimizations", &self.inner.optimizations)
            .finish()
    }
}

/// What a shutdown left behind.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every agent became idle within the drain timeout.
    pub drained: bool,
    /// Messages handled over the system's life.
    pub handled: u64,
    /// Messages that could not be delivered (kept below, up to the
    /// communicator's dead-letter capacity) or were left in mailboxes.
    pub undelivered: u64,
    /// The undelivered messages themselves.
    pub undelivered_messages: Vec<Message>,
}
