//! [`SwarmBuilder`]: how a [`SwarmSystem`] is put together, and the
//! [`Optimizations`] switches of the ablation table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hive_cpubalance::{Balancer, BalancerConfig};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{HiveError, HiveResult, NoRecycling, SharedRecycler};
use tokio::runtime::Handle;

use crate::inner::{Defaults, SwarmSystem, SystemInner};
use crate::options::{AllocationCounter, BatchBuffer, Optimizations};
use crate::runtime::AgentRuntime;
use crate::supervision::{AgentEvent, Backoff, EventHook, Overrun, RestartPolicy, Watchdog};

/// Builds a [`SwarmSystem`]; see [`SwarmSystem::builder`].
#[derive(Clone)]
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
    /// The recorder came from `recorder()`, not the default.
    #[cfg(feature = "metrics")]
    recorder_given: bool,
    #[cfg(feature = "metrics")]
    global_recorder: bool,
    #[cfg(feature = "metrics")]
    history: crate::watch::HistoryConfig,
    #[cfg(feature = "metrics")]
    watch: hive_metrics::WatchConfig,
    #[cfg(feature = "metrics")]
    on_alert: Option<crate::watch::AlertHook>,
    #[cfg(feature = "http")]
    serve: Option<Vec<std::net::SocketAddr>>,
    runtime: Option<Handle>,
    agent_threads: usize,
    tick_interval: Duration,
    send_timeout: Duration,
    defaults: Defaults,
    events: Option<EventHook>,
    heartbeat: Option<Duration>,
    max_agents: usize,
    max_observed: usize,
    optimizations: Optimizations,
    allocations: Option<AllocationCounter>,
    #[cfg(feature = "tracing")]
    trace_links: usize,
    #[cfg(feature = "tracing")]
    trace_propagator: Option<std::sync::Arc<dyn crate::TracePropagator>>,
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
            recorder_given: false,
            #[cfg(feature = "metrics")]
            global_recorder: true,
            #[cfg(feature = "metrics")]
            history: crate::watch::HistoryConfig::default(),
            #[cfg(feature = "metrics")]
            watch: hive_metrics::WatchConfig::default(),
            #[cfg(feature = "metrics")]
            on_alert: None,
            #[cfg(feature = "http")]
            serve: None,
            runtime: None,
            agent_threads: num_cpus::get().max(1),
            tick_interval: Duration::from_millis(100),
            send_timeout: Duration::from_secs(1),
            defaults: Defaults {
                restart: RestartPolicy::Always,
                backoff: Backoff::none(),
                watchdog: Some(Watchdog {
                    limit: Duration::from_secs(30),
                    action: Overrun::Report,
                }),
            },
            events: None,
            heartbeat: None,
            max_agents: 1 << 20,
            max_observed: 1000,
            optimizations: Optimizations::default(),
            allocations: None,
            #[cfg(feature = "tracing")]
            trace_links: 4096,
            #[cfg(feature = "tracing")]
            trace_propagator: None,
        }
    }
}

impl fmt::Debug for SwarmBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmBuilder")
            .field("communicator", &self.communicator)
            .field("balancer", &self.balancer)
            .field("agent_threads", &self.agent_threads)
            .field("send_timeout", &self.send_timeout)
            .field("max_agents", &self.max_agents)
            .field("optimizations", &self.optimizations)
            .finish_non_exhaustive()
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

    /// Records into `recorder` (for example one you already installed)
    /// instead of a new one.
    #[cfg(feature = "metrics")]
    pub fn recorder(mut self, recorder: hive_metrics::HiveRecorder) -> Self {
        self.recorder = Some(recorder);
        self.recorder_given = true;
        self
    }

    /// No hive recorder: components record to whatever `metrics` recorder
    /// is installed (or none); the report then omits metric-based figures.
    #[cfg(feature = "metrics")]
    pub fn no_recorder(mut self) -> Self {
        self.recorder = None;
        self
    }

    /// Whether `build` installs the system's recorder as the global
    /// `metrics` recorder, so every component's metrics reach it (default:
    /// yes). A process has one global recorder: when a hive recorder is
    /// installed already (by an earlier system, or by you), a system built
    /// with the default recorder records into that one, and its series
    /// mix with the earlier system's (same names, process-wide figures);
    /// with [`recorder`](Self::recorder) given, or another kind of recorder
    /// installed, the system keeps its own recorder, which then sees only
    /// what the system records itself.
    #[cfg(feature = "metrics")]
    pub fn global_recorder(mut self, install: bool) -> Self {
        self.global_recorder = install;
        self
    }

    /// The live watch's history: one measured [`Window`](crate::Window)
    /// every `window`, the last `windows` kept (default: one second, an
    /// hour; 3,600 windows of a few dozen bytes each).
    #[cfg(feature = "metrics")]
    pub fn history(mut self, window: Duration, windows: usize) -> Self {
        self.history = crate::watch::HistoryConfig { window, windows };
        self
    }

    /// How the live watch judges each window's throughput, latency p99 and
    /// resident memory against the median of its recent windows, and when
    /// it raises an alert (default: [`WatchConfig::default`](hive_metrics::WatchConfig)).
    #[cfg(feature = "metrics")]
    pub fn watch(mut self, config: hive_metrics::WatchConfig) -> Self {
        self.watch = config;
        self
    }

    /// Called with each regression alert, on the system's ticker thread
    /// (keep it short). Alerts also go to
    /// [`SwarmSystem::alerts`](crate::SwarmSystem::alerts), to
    /// `hive_metrics_regression_alerts_total{figure}` and to `/alerts.json`.
    #[cfg(feature = "metrics")]
    pub fn on_alert(mut self, hook: impl Fn(&hive_metrics::Alert) + Send + Sync + 'static) -> Self {
        self.on_alert = Some(Arc::new(hook));
        self
    }

    /// Serves the system's metrics at `addr` (port 0 picks a free one; see
    /// [`SwarmSystem::metrics_addr`](crate::SwarmSystem::metrics_addr)):
    /// `/metrics` (Prometheus text), `/metrics.json`, `/history.json`,
    /// `/alerts.json` and the dashboard at `/`. An address that does not
    /// resolve fails `build`.
    #[cfg(feature = "http")]
    pub fn serve(mut self, addr: impl std::net::ToSocketAddrs) -> Self {
        self.serve = Some(
            addr.to_socket_addrs()
                .map(Iterator::collect)
                .unwrap_or_default(),
        );
        self
    }

    /// Runs async agents on `runtime` (yours) instead of a runtime the
    /// system starts and owns. The system never shuts your runtime down.
    pub fn runtime(mut self, runtime: Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Threads of the system's own runtime for async agents (default: one
    /// per core). Ignored with [`runtime`](Self::runtime).
    pub fn agent_threads(mut self, threads: usize) -> Self {
        self.agent_threads = threads;
        self
    }

    /// How often the ticks (pool maintenance, balancer sampling,
    /// memory samples, the watchdog, per-agent metrics).
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// How long an agent's send, ask of room, or CPU submission waits for
    /// room before it hands the message or task back (1 s by default).
    pub fn agent_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// What happens to agents whose handler panics, unless an agent is
    /// given its own policy (default: restart every time, at once).
    pub fn restart(mut self, policy: RestartPolicy, backoff: Backoff) -> Self {
        self.defaults.restart = policy;
        self.defaults.backoff = backoff;
        self
    }

    /// The handler time limit for agents without their own (default: 30 s,
    /// reported); `None` turns the watchdog off.
    pub fn watchdog(mut self, watchdog: Option<Watchdog>) -> Self {
        self.defaults.watchdog = watchdog;
        self
    }

    /// Calls `hook` with every [`AgentEvent`]: starts, panics, restarts,
    /// escalations, watchdog overruns, stops. It runs on the thread where
    /// the event happened: keep it short.
    pub fn on_event(mut self, hook: impl Fn(&AgentEvent) + Send + Sync + 'static) -> Self {
        self.events = Some(Arc::new(hook));
        self
    }

    /// Sends subscribers a [`Heartbeat`](crate::LifecycleEvent::Heartbeat)
    /// every `interval` (rounded to ticks).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// Most agents running at once (default 1,048,576); a spawn beyond it
    /// is refused with `Full`.
    pub fn max_agents(mut self, n: usize) -> Self {
        self.max_agents = n;
        self
    }

    /// Most agents with their own metric series (named agents and those
    /// spawned with `metrics(true)`; default 1,000): beyond it agents run
    /// without per-agent series, so metric cardinality stays bounded.
    pub fn max_observed_agents(mut self, n: usize) -> Self {
        self.max_observed = n;
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

    /// Messages whose sending span is kept until they are handled, so the
    /// recipient's `hive.handle` span is its child (feature `tracing`;
    /// default 4,096). Beyond it the oldest link is forgotten and counted
    /// in `hive_trace_links_evicted_total`.
    #[cfg(feature = "tracing")]
    pub fn trace_links(mut self, n: usize) -> Self {
        self.trace_links = n;
        self
    }

    /// Carries trace contexts to and from other processes (feature
    /// `tracing`): messages for agents elsewhere take the sending span's
    /// context, and a message from elsewhere is handled in a span that
    /// continues its trace. Set it on both sides; see [`TracePropagator`](crate::TracePropagator).
    #[cfg(feature = "tracing")]
    pub fn trace_propagator(mut self, propagator: impl crate::TracePropagator) -> Self {
        self.trace_propagator = Some(std::sync::Arc::new(propagator));
        self
    }

    fn validate(&self) -> HiveResult<()> {
        if self.tick_interval.is_zero() {
            return Err(HiveError::config("tick_interval", "must be more than zero"));
        }
        #[cfg(feature = "metrics")]
        self.watch.validate()?;
        #[cfg(feature = "metrics")]
        if self.history.window.is_zero() || self.history.windows == 0 {
            return Err(HiveError::config(
                "history",
                "needs a window longer than zero and at least one window kept",
            ));
        }
        if self.agent_threads == 0 {
            return Err(HiveError::config("agent_threads", "must be at least 1"));
        }
        #[cfg(feature = "tracing")]
        if self.trace_links == 0 {
            return Err(HiveError::config("trace_links", "must be at least 1"));
        }
        if self.max_agents == 0 {
            return Err(HiveError::config("max_agents", "must be at least 1"));
        }
        if self.defaults.watchdog.is_some_and(|w| w.limit.is_zero()) {
            return Err(HiveError::config(
                "watchdog",
                "the limit must be more than zero",
            ));
        }
        if self.heartbeat.is_some_and(|h| h.is_zero()) {
            return Err(HiveError::config(
                "heartbeat",
                "the interval must be more than zero",
            ));
        }
        Ok(())
    }

    /// Starts the system.
    pub fn build(self) -> HiveResult<SwarmSystem> {
        self.validate()?;
        let opt = self.optimizations;
        #[cfg(feature = "metrics")]
        let recorder = self.pick_recorder();
        #[cfg(feature = "metrics")]
        let watch =
            crate::watch::Watch::new(self.history, self.watch.clone(), self.on_alert.clone())?;
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
        // The system's ticker samples and scales the balancer each tick.
        balancer_config.scale_interval = None;
        balancer_config.load_aware = opt.load_aware;
        balancer_config.priorities = opt.load_aware;
        let balancer = Balancer::new(balancer_config)?;
        #[cfg(feature = "mempool")]
        let pools = if opt.pools {
            Some(hive_mempool::SwarmMemoryPools::new(self.pools)?)
        } else {
            None
        };
        let runtime = match self.runtime {
            Some(handle) => AgentRuntime::external(handle),
            None => AgentRuntime::owned(self.agent_threads)?,
        };
        let inner = SystemInner::new(crate::inner::Parts {
            communicator,
            balancer,
            #[cfg(feature = "mempool")]
            pools,
            #[cfg(feature = "mempool")]
            batch_pool,
            #[cfg(feature = "metrics")]
            recorder: recorder.clone(),
            #[cfg(feature = "metrics")]
            watch: Some(watch),
            runtime,
            optimizations: opt,
            send_timeout: self.send_timeout,
            defaults: self.defaults,
            events: self.events,
            heartbeat: self.heartbeat,
            max_agents: self.max_agents,
            max_observed: self.max_observed,
            allocations: self.allocations,
            #[cfg(feature = "tracing")]
            trace_links: self.trace_links,
            #[cfg(feature = "tracing")]
            trace_propagator: self.trace_propagator,
        });
        crate::ticker::start(&inner, self.tick_interval)?;
        let system = SwarmSystem::owner(inner);
        #[cfg(feature = "http")]
        if let Some(addrs) = &self.serve {
            let (Some(addr), Some(recorder)) = (addrs.first(), recorder) else {
                let why = match addrs.is_empty() {
                    true => "the address did not resolve",
                    false => "serving needs the system's recorder (no_recorder was set)",
                };
                system.shutdown(Duration::ZERO);
                return Err(HiveError::config("serve", why));
            };
            let server = match crate::observe::http::serve(&system.inner, recorder, *addr) {
                Ok(server) => server,
                Err(e) => {
                    system.shutdown(Duration::ZERO);
                    return Err(e);
                }
            };
            *hive_types::sync::lock(&system.inner.server) = Some(server);
        }
        Ok(system)
    }

    /// The recorder to record into, installed as the global one unless told
    /// otherwise (see [`global_recorder`](Self::global_recorder)).
    #[cfg(feature = "metrics")]
    fn pick_recorder(&self) -> Option<hive_metrics::HiveRecorder> {
        let mine = self.recorder.clone()?;
        if !self.global_recorder || mine.install().is_ok() {
            return Some(mine);
        }
        match hive_metrics::HiveRecorder::installed() {
            // The default recorder gives way to the installed hive one,
            // which sees every component's metrics.
            Some(installed) if !self.recorder_given => Some(installed),
            _ => Some(mine),
        }
    }
}
