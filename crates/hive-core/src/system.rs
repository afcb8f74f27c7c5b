//! What a [`SwarmSystem`] handle does: spawn, reach, ask and stop agents,
//! report, shut down. The state it points to is `inner`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use hive_cpubalance::Balancer;
use hive_messaging::{Communicator, Sender};
use hive_types::{AgentId, HiveError, HiveResult, Message, Rejected};

use crate::cell::{StopMode, StopReport};
use crate::inner::{SwarmSystem, SystemInner};
#[cfg(feature = "mempool")]
use crate::options::BatchBuffer;
use crate::options::Optimizations;
use crate::report::SystemReport;
use crate::spawn::{AgentBuilder, AgentRef};

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

    /// Sends `payload` to `to` as a `Normal` `Data` message from outside
    /// the swarm, waiting for room without limit.
    pub fn tell(&self, to: AgentId, payload: impl Into<Bytes>) -> Result<(), Rejected<Message>> {
        let mut message = Message::new(self.inner.communicator.reply_address(), to, payload);
        let id = message.id;
        self.inner.trace_send(&mut message);
        self.inner
            .trace_result(id, self.inner.outside.send(message))
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
        let request = Message::request(self.inner.communicator.reply_address(), to, payload);
        self.inner.request(&self.inner.outside, request, timeout)
    }

    /// [`ask`](Self::ask) from async code (any executor).
    pub async fn ask_async(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        let request = Message::request(self.inner.communicator.reply_address(), to, payload);
        self.inner
            .request_async(&self.inner.outside, request, timeout)
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
    /// stops (and heartbeats, if configured); see [`LifecycleEvent`](crate::LifecycleEvent).
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
