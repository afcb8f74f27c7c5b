//! What a handler can do: [`Context`] for async agents, [`SyncContext`]
//! for sync ones. Both send through the agent's own sender (so the agent's
//! messages to one recipient keep their order) and bound every wait by the
//! system's send timeout, so agents filling each other's mailboxes slow
//! down instead of deadlocking.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hive_cpubalance::TaskHandle;
use hive_messaging::{BroadcastReport, Sender};
use hive_types::{
    AgentId, HiveError, HiveResult, Message, MessageKind, Priority, Recipient, Rejected,
};

use crate::cell::{AgentCell, StopMode};
use crate::inner::SwarmSystem;

fn data(from: AgentId, to: AgentId, priority: Priority, payload: impl Into<Bytes>) -> Message {
    Message::builder(from, to)
        .priority(priority)
        .payload(payload)
        .build()
}

fn broadcast_message(from: AgentId, payload: impl Into<Bytes>) -> Message {
    Message::builder(from, Recipient::Broadcast)
        .kind(MessageKind::Broadcast)
        .payload(payload)
        .build()
}

/// The context of an async [`Agent`](crate::Agent)'s handler.
///
/// Every send waits for room at most the system's send timeout
/// ([`SwarmBuilder::agent_send_timeout`](crate::SwarmBuilder::agent_send_timeout),
/// 1 s by default), then hands the message back; a message to the agent
/// itself never waits (its own mailbox only drains after this handler).
pub struct Context {
    pub(crate) cell: Arc<AgentCell>,
    pub(crate) sender: AgentSender,
    pub(crate) system: SwarmSystem,
}

/// An agent's own sender (its messages stay in order), made on its first
/// send: an agent that never sends costs no sender, and the communicator's
/// flusher has one sender fewer to visit.
#[derive(Default)]
pub(crate) struct AgentSender(OnceLock<Sender>);

impl AgentSender {
    fn get(&self, system: &SwarmSystem) -> &Sender {
        self.0.get_or_init(|| system.inner.communicator.sender())
    }

    /// Hands what it holds to the mailboxes (nothing, if it never sent).
    pub(crate) fn flush(&self) {
        if let Some(sender) = self.0.get() {
            sender.flush();
        }
    }
}

impl Context {
    fn sender(&self) -> &Sender {
        self.sender.get(&self.system)
    }

    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.cell.id
    }

    /// This agent's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.cell.name.as_deref()
    }

    /// The system this agent runs in (to spawn agents, look names up...).
    pub fn system(&self) -> &SwarmSystem {
        &self.system
    }

    fn timeout(&self) -> Duration {
        self.system.inner.send_timeout
    }

    /// Sends `message` (a [`Recipient::Broadcast`] one goes to every other
    /// agent), waiting for room at most the send timeout.
    pub async fn send(&self, mut message: Message) -> Result<(), Rejected<Message>> {
        let inner = &self.system.inner;
        let id = message.id;
        inner.trace_send(&mut message);
        if message.recipient.agent() == Some(self.cell.id) {
            return inner.trace_result(id, self.sender().try_send(message));
        }
        let timeout = self.timeout();
        let timer = inner.timer(timeout);
        let sent = self
            .sender()
            .send_async_timeout(message, timeout, timer)
            .await;
        inner.trace_result(id, sent)
    }

    /// Sends without waiting: a full mailbox hands the message back.
    pub fn try_send(&self, mut message: Message) -> Result<(), Rejected<Message>> {
        let id = message.id;
        self.system.inner.trace_send(&mut message);
        self.system
            .inner
            .trace_result(id, self.sender().try_send(message))
    }

    /// Sends `payload` to `to` as a `Normal` [`MessageKind::Data`] message.
    pub async fn tell(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(data(self.cell.id, to, Priority::Normal, payload))
            .await
    }

    /// Sends `payload` to `to` as a `Data` message at `priority`.
    pub async fn send_to(
        &self,
        to: AgentId,
        priority: Priority,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(data(self.cell.id, to, priority, payload)).await
    }

    /// Answers `request` with `payload`: a `Response` correlated with it,
    /// at its priority. If the asker is waiting in an `ask`, it gets this.
    pub async fn reply(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(request.reply(self.cell.id, payload)).await
    }

    /// Asks `to` and awaits its reply, at most `timeout` in all (see
    /// [`SwarmSystem::ask`]). The handler waits; this agent's other mail
    /// waits with it.
    pub async fn ask(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        self.request(Message::request(self.cell.id, to, payload), timeout)
            .await
    }

    /// Like [`ask`](Self::ask) with a request built by the caller (its
    /// priority, time to live, kind).
    pub async fn request(&self, request: Message, timeout: Duration) -> HiveResult<Message> {
        self.system
            .inner
            .request_async(self.sender(), request, timeout)
            .await
    }

    /// Sends `payload` to every other agent as a `Broadcast` message; the
    /// send timeout covers all of them, and those still full then are in
    /// [`BroadcastReport::missed`].
    pub async fn broadcast(&self, payload: impl Into<Bytes>) -> HiveResult<BroadcastReport> {
        let timeout = self.timeout();
        let timer = self.system.inner.timer(timeout);
        self.sender()
            .broadcast_async_timeout(broadcast_message(self.cell.id, payload), timeout, timer)
            .await
    }

    /// Runs `f` on the CPU balancer at `priority` and awaits its result,
    /// without holding this task's thread: CPU-heavy work keeps its
    /// priority, and I/O-bound agents keep running meanwhile. Waits for room
    /// in that class at most the send timeout.
    pub async fn spawn_cpu<F, R>(&self, priority: Priority, f: F) -> HiveResult<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let timeout = self.timeout();
        let timer = self.system.inner.timer(timeout);
        let handle = self
            .system
            .balancer()
            .submit_async_timeout(priority, f, timeout, timer)
            .await
            .map_err(HiveError::from)?;
        handle.await
    }

    /// Tells the watchdog this handler is alive: its time limit counts
    /// from now again.
    pub fn heartbeat(&self) {
        self.cell.begin(self.system.inner.clock.precise_ms());
    }

    /// Stops this agent after the current message (`Drain`: after its
    /// waiting mail too).
    pub fn stop(&self, mode: StopMode) {
        self.cell.request_stop(mode);
    }

    /// Hands what this agent's sender holds to the mailboxes now (it does
    /// so by itself when the agent has no more mail).
    pub fn flush(&self) {
        self.sender.flush();
    }

    /// The object pools, when the system has them.
    #[cfg(feature = "mempool")]
    pub fn pools(&self) -> Option<&hive_mempool::SwarmMemoryPools> {
        self.system.pools()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.cell.id)
            .field("name", &self.cell.name)
            .finish_non_exhaustive()
    }
}

/// The context of a [`SyncAgent`](crate::SyncAgent)'s handler: the same
/// operations as [`Context`], blocking. Every wait is bounded by the send
/// timeout, as there.
pub struct SyncContext<'a> {
    pub(crate) cell: &'a AgentCell,
    pub(crate) sender: &'a AgentSender,
    pub(crate) system: &'a SwarmSystem,
}

impl SyncContext<'_> {
    fn sender(&self) -> &Sender {
        self.sender.get(self.system)
    }

    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.cell.id
    }

    /// This agent's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.cell.name.as_deref()
    }

    /// The system this agent runs in.
    pub fn system(&self) -> &SwarmSystem {
        self.system
    }

    fn timeout(&self) -> Duration {
        self.system.inner.send_timeout
    }

    /// Runs `wait` as a wait of this balancer thread: while it waits,
    /// another worker may run the agents it waits for (see
    /// [`Balancer::blocking`](hive_cpubalance::Balancer::blocking)).
    fn waiting<R>(&self, wait: impl FnOnce() -> R) -> R {
        self.system.inner.balancer.blocking(wait)
    }

    /// Sends `message`, waiting for room at most the send timeout.
    ///
    /// While the recipient's mailbox is full, this thread runs other
    /// queued balancer work (often the recipient's own run), so handlers
    /// waiting on each other cannot hold every balancer thread. Such work
    /// may be another agent's handler, run inside this call: do not hold a
    /// lock across a send that another agent's handler also takes.
    pub fn send(&self, mut message: Message) -> Result<(), Rejected<Message>> {
        let inner = &self.system.inner;
        let id = message.id;
        inner.trace_send(&mut message);
        // Its own mailbox only drains after this handler: never wait for it.
        let sent = match message.recipient.agent() {
            Some(to) if to == self.cell.id => self.sender().try_send(message),
            Some(_) => match self.sender().try_send(message) {
                Err(full) if full.is_full() => self.send_when_room(full.into_inner()),
                other => other,
            },
            None => self.waiting(|| self.sender().send_timeout(message, self.timeout())),
        };
        inner.trace_result(id, sent)
    }

    /// The mailbox `message` goes to is full: this thread runs queued
    /// balancer work meanwhile (the agent it waits for may be part of it,
    /// and every worker may be waiting like this one), then waits for room
    /// as a blocking wait, at most the send timeout in all.
    fn send_when_room(&self, mut message: Message) -> Result<(), Rejected<Message>> {
        let deadline = Instant::now() + self.timeout();
        // What this agent's sender holds for that mailbox counts against
        // its room: hand it over so the recipient can take it.
        self.sender().flush();
        while Instant::now() < deadline && self.system.inner.balancer.help() {
            match self.sender().try_send(message) {
                Err(full) if full.is_full() => message = full.into_inner(),
                done => return done,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.waiting(|| self.sender().send_timeout(message, left))
    }

    /// Sends without waiting.
    pub fn try_send(&self, mut message: Message) -> Result<(), Rejected<Message>> {
        let id = message.id;
        self.system.inner.trace_send(&mut message);
        self.system
            .inner
            .trace_result(id, self.sender().try_send(message))
    }

    /// Sends `payload` to `to` as a `Normal` `Data` message.
    pub fn tell(&self, to: AgentId, payload: impl Into<Bytes>) -> Result<(), Rejected<Message>> {
        self.send(data(self.cell.id, to, Priority::Normal, payload))
    }

    /// Sends `payload` to `to` as a `Data` message at `priority`.
    pub fn send_to(
        &self,
        to: AgentId,
        priority: Priority,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(data(self.cell.id, to, priority, payload))
    }

    /// Answers `request` with `payload` (a correlated `Response`).
    pub fn reply(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(request.reply(self.cell.id, payload))
    }

    /// Asks `to` and blocks for its reply, at most `timeout` (this holds a
    /// balancer thread meanwhile: prefer an async agent for such waits).
    pub fn ask(
        &self,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> HiveResult<Message> {
        let request = Message::request(self.cell.id, to, payload);
        self.waiting(|| self.system.inner.request(self.sender(), request, timeout))
    }

    /// Sends `payload` to every other agent; see [`Context::broadcast`].
    pub fn broadcast(&self, payload: impl Into<Bytes>) -> HiveResult<BroadcastReport> {
        let message = broadcast_message(self.cell.id, payload);
        self.waiting(|| self.sender().broadcast_timeout(message, self.timeout()))
    }

    /// Runs `f` on the balancer at `priority`; the handle yields its result.
    /// Waits for room in that class at most the send timeout, then hands
    /// `f` back.
    pub fn submit<F, R>(&self, priority: Priority, f: F) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let balancer = self.system.balancer();
        match balancer.try_submit(priority, f) {
            Err(full) if full.is_full() => {
                let f = full.into_inner();
                self.waiting(|| balancer.submit_timeout(priority, f, self.timeout()))
            }
            other => other,
        }
    }

    /// Tells the watchdog this handler is alive.
    pub fn heartbeat(&self) {
        self.cell.begin(self.system.inner.clock.precise_ms());
    }

    /// Stops this agent after the current message.
    pub fn stop(&self, mode: StopMode) {
        self.cell.request_stop(mode);
    }

    /// Hands what this agent's sender holds to the mailboxes now.
    pub fn flush(&self) {
        self.sender.flush();
    }

    /// The object pools, when the system has them.
    #[cfg(feature = "mempool")]
    pub fn pools(&self) -> Option<&hive_mempool::SwarmMemoryPools> {
        self.system.pools()
    }
}

impl fmt::Debug for SyncContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncContext")
            .field("id", &self.cell.id)
            .field("name", &self.cell.name)
            .finish_non_exhaustive()
    }
}
