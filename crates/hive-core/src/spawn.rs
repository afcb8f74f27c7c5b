//! Spawning agents ([`AgentBuilder`]) and the handle that reaches one
//! ([`AgentRef`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_types::{AgentId, HiveResult, Message, Rejected};

use crate::agent::{Agent, SyncAgent};
use crate::cell::{AgentCell, Observed, StopMode, StopReport};
use crate::context::Context;
use crate::inner::SwarmSystem;
use crate::lifecycle::LifecycleEvent;
use crate::on_balancer::{BalancerAgent, SyncFactory};
use crate::on_tokio::TokioAgent;
use crate::supervision::{AgentEventKind, Backoff, Overrun, RestartPolicy, Supervisor, Watchdog};

/// Options for one agent; see [`SwarmSystem::agent`].
///
/// ```
/// use std::time::Duration;
/// use hive_core::{Agent, Backoff, Context, Message, RestartPolicy, SwarmSystem};
///
/// #[derive(Default)]
/// struct Scorer;
///
/// impl Agent for Scorer {
///     async fn handle(&mut self, m: Message, ctx: &mut Context) {
///         let _ = ctx.reply(&m, m.payload.len().to_string()).await;
///     }
/// }
///
/// let system = SwarmSystem::builder().build()?;
/// let scorer = system
///     .agent()
///     .name("scorer")
///     .restart(RestartPolicy::at_most(3, Duration::from_secs(60)))
///     .backoff(Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)))
///     .spawn_with(Scorer::default)?; // restarts get a fresh Scorer
/// let reply = system.ask(scorer.id(), "four", Duration::from_secs(5))?;
/// assert_eq!(reply.payload.as_ref(), b"4");
/// assert_eq!(system.lookup("scorer").map(|a| a.id()), Some(scorer.id()));
/// # system.shutdown(Duration::from_secs(5));
/// # Ok::<(), hive_core::HiveError>(())
/// ```
#[must_use = "an agent builder spawns nothing until a spawn method is called"]
pub struct AgentBuilder<'a> {
    system: &'a SwarmSystem,
    id: Option<AgentId>,
    name: Option<Arc<str>>,
    restart: RestartPolicy,
    backoff: Backoff,
    watchdog: Option<Watchdog>,
    metrics: bool,
}

impl<'a> AgentBuilder<'a> {
    pub(crate) fn new(system: &'a SwarmSystem) -> Self {
        let d = system.inner.defaults;
        AgentBuilder {
            system,
            id: None,
            name: None,
            restart: d.restart,
            backoff: d.backoff,
            watchdog: d.watchdog,
            metrics: false,
        }
    }

    /// Runs the agent under `id` (default: a fresh random id).
    pub fn id(mut self, id: AgentId) -> Self {
        self.id = Some(id);
        self
    }

    /// Registers the agent under `name` (freed when it stops); a named
    /// agent gets its own metric series.
    pub fn name(mut self, name: impl AsRef<str>) -> Self {
        self.name = Some(Arc::from(name.as_ref()));
        self
    }

    /// What happens when a handler panics.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// How long restarts wait.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The handler time limit and what happens past it (`None`: none).
    pub fn watchdog(mut self, watchdog: Option<Watchdog>) -> Self {
        self.watchdog = watchdog;
        self
    }

    /// Keeps per-agent metric series for this agent even without a name.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Spawns `agent` as a task on the system's tokio runtime. After a
    /// restart it keeps its state (only `on_start` runs again): use
    /// [`spawn_with`](Self::spawn_with) for a fresh instance each time.
    pub fn spawn<A: Agent>(self, agent: A) -> HiveResult<AgentRef> {
        self.spawn_tokio(agent, None)
    }

    /// Spawns an agent made by `factory`, which also makes the fresh
    /// instance each restart starts from.
    pub fn spawn_with<A, F>(self, factory: F) -> HiveResult<AgentRef>
    where
        A: Agent,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let agent = factory();
        self.spawn_tokio(agent, Some(Box::new(factory)))
    }

    /// Spawns a sync agent (or closure) on the CPU balancer. After a restart
    /// it keeps its state; see [`spawn_sync_with`](Self::spawn_sync_with).
    pub fn spawn_sync<A: SyncAgent>(self, agent: A) -> HiveResult<AgentRef> {
        self.spawn_balancer(Box::new(agent), None)
    }

    /// Spawns a sync agent made by `factory`, which also makes the fresh
    /// instance each restart starts from.
    pub fn spawn_sync_with<A, F>(self, factory: F) -> HiveResult<AgentRef>
    where
        A: SyncAgent,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let agent = Box::new(factory());
        let factory: SyncFactory = Box::new(move || Box::new(factory()));
        self.spawn_balancer(agent, Some(factory))
    }

    /// Registers the mailbox and the directory entry; the runner comes next.
    fn prepare(&self, runs_on: RunsOn) -> HiveResult<(Arc<AgentCell>, hive_messaging::Mailbox)> {
        let inner = &self.system.inner;
        inner.directory.check_room(self.name.as_deref())?;
        let id = self.id.unwrap_or_else(AgentId::random);
        let mailbox = inner.communicator.register(id)?;
        let observed = (self.name.is_some() || self.metrics) && inner.directory.claim_observed();
        let observed = observed.then(|| {
            Observed::new(
                self.name
                    .clone()
                    .unwrap_or_else(|| Arc::from(id.to_string())),
            )
        });
        let watchdog = match (runs_on, self.watchdog) {
            // A sync handler cannot be interrupted: it is only reported.
            (RunsOn::Balancer, Some(w)) => Some(Watchdog {
                action: Overrun::Report,
                ..w
            }),
            (_, w) => w,
        };
        let cell = Arc::new(AgentCell::new(
            id,
            self.name.clone(),
            mailbox.probe(),
            watchdog,
            observed,
        ));
        inner.directory.insert(cell.clone())?;
        inner.emit(&cell, AgentEventKind::Started);
        inner.subscribers.notify(
            &inner.outside,
            Some(id),
            &LifecycleEvent::Joined {
                agent: id,
                name: self.name.as_ref().map(|n| n.to_string()),
            },
        );
        Ok((cell, mailbox))
    }

    fn spawn_tokio<A: Agent>(
        self,
        agent: A,
        factory: Option<crate::on_tokio::Factory<A>>,
    ) -> HiveResult<AgentRef> {
        let (cell, mailbox) = self.prepare(RunsOn::Tokio)?;
        let system = self.system.internal_handle();
        let ctx = Context {
            sender: crate::context::AgentSender::default(),
            cell: cell.clone(),
            system: system.clone(),
        };
        let mut runner = TokioAgent {
            agent,
            factory,
            mailbox,
            ctx,
            supervisor: Supervisor::new(self.restart, self.backoff),
            streak: 0,
        };
        let task = system
            .inner
            .runtime
            .spawn(async move { runner.run().await });
        cell.set_abort(task.abort_handle());
        Ok(AgentRef::new(cell.id, system))
    }

    fn spawn_balancer(
        self,
        agent: Box<dyn SyncAgent>,
        factory: Option<SyncFactory>,
    ) -> HiveResult<AgentRef> {
        let (cell, mailbox) = self.prepare(RunsOn::Balancer)?;
        let system = self.system.internal_handle();
        let id = cell.id;
        BalancerAgent::start(
            &system.inner,
            cell,
            mailbox,
            agent,
            factory,
            Supervisor::new(self.restart, self.backoff),
        );
        Ok(AgentRef::new(id, system))
    }
}

/// Where an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunsOn {
    Tokio,
    Balancer,
}

impl fmt::Debug for AgentBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("watchdog", &self.watchdog)
            .finish_non_exhaustive()
    }
}

/// A handle to a running agent: its id, and ways to reach and stop it from
/// outside the swarm. Cheap to clone; it does not keep the system alive.
#[derive(Clone)]
pub struct AgentRef {
    id: AgentId,
    system: SwarmSystem,
}

impl AgentRef {
    pub(crate) fn new(id: AgentId, system: SwarmSystem) -> Self {
        AgentRef { id, system }
    }

    /// The agent's id (its address in messages).
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// Its name, if it has one.
    pub fn name(&self) -> Option<String> {
        self.system
            .inner
            .directory
            .get(&self.id)
            .and_then(|c| c.name.as_ref().map(|n| n.to_string()))
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        self.system.inner.directory.get(&self.id).is_some()
    }

    /// Sends it `payload` (see [`SwarmSystem::tell`]).
    pub fn tell(&self, payload: impl Into<Bytes>) -> Result<(), Rejected<Message>> {
        self.system.tell(self.id, payload)
    }

    /// Asks it and blocks for the reply (see [`SwarmSystem::ask`]).
    pub fn ask(&self, payload: impl Into<Bytes>, timeout: Duration) -> HiveResult<Message> {
        self.system.ask(self.id, payload, timeout)
    }

    /// Asks it from async code (see [`SwarmSystem::ask_async`]).
    pub async fn ask_async(
        &self,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        self.system.ask_async(self.id, payload, timeout).await
    }

    /// Stops it and waits, at most `timeout` (see [`SwarmSystem::stop`]).
    pub fn stop(&self, mode: StopMode, timeout: Duration) -> HiveResult<StopReport> {
        self.system.stop(self.id, mode, timeout)
    }

    /// Stops it from async code (see [`SwarmSystem::stop_async`]).
    pub async fn stop_async(&self, mode: StopMode) -> HiveResult<StopReport> {
        self.system.stop_async(self.id, mode).await
    }
}

impl From<&AgentRef> for AgentId {
    fn from(agent: &AgentRef) -> AgentId {
        agent.id
    }
}

impl From<&AgentRef> for hive_types::Recipient {
    fn from(agent: &AgentRef) -> hive_types::Recipient {
        hive_types::Recipient::Agent(agent.id)
    }
}

impl From<AgentRef> for hive_types::Recipient {
    fn from(agent: AgentRef) -> hive_types::Recipient {
        hive_types::Recipient::Agent(agent.id)
    }
}

impl fmt::Debug for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRef").field("id", &self.id).finish()
    }
}
