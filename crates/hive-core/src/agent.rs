//! Agents: a handler per agent, run on the CPU balancer one message at a
//! time, at the priority of its mail.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use hive_cpubalance::TaskHandle;
use hive_messaging::{Mailbox, PendingPriority, Sender};
use hive_types::{AgentId, HiveResult, Message, Priority, Recipient, Rejected, Timestamp};

use crate::system::{lock, SwarmSystem, SystemInner};

/// Messages an agent handles per run before it yields its worker.
const BUDGET: usize = 256;

/// What an agent does with its messages.
///
/// Any `FnMut(Message, &mut AgentContext<'_>) + Send` closure is an agent.
pub trait Agent: Send + 'static {
    /// Handles one message. Messages from one sender arrive in order; the
    /// agent never runs on two threads at once.
    fn handle(&mut self, message: Message, ctx: &mut AgentContext<'_>);
}

impl<F> Agent for F
where
    F: FnMut(Message, &mut AgentContext<'_>) + Send + 'static,
{
    fn handle(&mut self, message: Message, ctx: &mut AgentContext<'_>) {
        self(message, ctx)
    }
}

/// What a handler can do: send, reply, broadcast, submit CPU work, use the
/// pools.
pub struct AgentContext<'a> {
    id: AgentId,
    sender: &'a Sender,
    system: &'a SwarmSystem,
}

impl AgentContext<'_> {
    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// Sends `message`. While the recipient's mailbox is full this waits,
    /// up to the system's send timeout (1 s by default, see
    /// [`SwarmBuilder::agent_send_timeout`](crate::SwarmBuilder::agent_send_timeout)),
    /// then hands the message back: two agents filling each other's
    /// mailboxes cannot block their workers forever. A message to the agent
    /// itself never waits (its own mailbox only drains when this run ends).
    pub fn send(&self, message: Message) -> Result<(), Rejected<Message>> {
        if message.recipient.agent() == Some(self.id) {
            return self.sender.try_send(message);
        }
        self.sender
            .send_timeout(message, self.system.inner.send_timeout)
    }

    /// Sends `payload` to `to` as a `Data` message at `priority`.
    pub fn send_to(
        &self,
        to: AgentId,
        priority: Priority,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(
            Message::builder(self.id, to)
                .priority(priority)
                .payload(payload)
                .build(),
        )
    }

    /// Answers `request` with `payload` (a correlated response).
    pub fn reply(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<(), Rejected<Message>> {
        self.send(request.reply(self.id, payload))
    }

    /// Sends `payload` to every other agent.
    pub fn broadcast(&self, payload: impl Into<Bytes>) -> HiveResult<usize> {
        self.sender.broadcast(
            Message::builder(self.id, Recipient::Broadcast)
                .payload(payload)
                .build(),
        )
    }

    /// Runs `f` on the balancer at `priority`; the handle yields its result.
    /// Waits for room in that class up to the system's send timeout, then
    /// hands `f` back.
    pub fn submit<F, R>(&self, priority: Priority, f: F) -> Result<TaskHandle<R>, Rejected<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.system
            .balancer()
            .submit_timeout(priority, f, self.system.inner.send_timeout)
    }

    /// The object pools, when the system has them.
    #[cfg(feature = "mempool")]
    pub fn pools(&self) -> Option<&hive_mempool::SwarmMemoryPools> {
        self.system.pools()
    }

    /// The system this agent lives in.
    pub fn system(&self) -> &SwarmSystem {
        self.system
    }
}

impl fmt::Debug for AgentContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentContext")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// An agent's state: mailbox, handler, its own sender (order per agent).
pub(crate) struct AgentRuntime {
    pub(crate) id: AgentId,
    mailbox: Mutex<Mailbox>,
    priority: PendingPriority,
    agent: Mutex<Box<dyn Agent>>,
    sender: Sender,
    /// Set while a run is queued or running: at most one at a time.
    scheduled: AtomicBool,
    /// Priority of the current run (a continuation steps one class down).
    running_at: AtomicU8,
    /// Set while the agent waits in the system's backlog: it is there once.
    pub(crate) in_backlog: AtomicBool,
    system: Weak<SystemInner>,
}

impl AgentRuntime {
    pub(crate) fn start(
        system: &Arc<SystemInner>,
        id: AgentId,
        mut mailbox: Mailbox,
        agent: Box<dyn Agent>,
    ) -> HiveResult<Arc<AgentRuntime>> {
        let runtime = Arc::new_cyclic(|me: &Weak<AgentRuntime>| {
            let me = me.clone();
            // Mail arrived: make sure a run is queued.
            let _ = mailbox.on_ready(move || {
                if let Some(runtime) = me.upgrade() {
                    runtime.schedule();
                }
            });
            AgentRuntime {
                id,
                priority: mailbox.pending_priority(),
                mailbox: Mutex::new(mailbox),
                agent: Mutex::new(agent),
                sender: system.communicator.sender(),
                scheduled: AtomicBool::new(false),
                running_at: AtomicU8::new(Priority::Low as u8),
                in_backlog: AtomicBool::new(false),
                system: Arc::downgrade(system),
            }
        });
        // Mail that came before the hook, and idleness for prompt delivery.
        if lock(&runtime.mailbox).declare_idle() {
            runtime.schedule();
        }
        Ok(runtime)
    }

    /// Queues a run on the balancer unless one is queued or running.
    pub(crate) fn schedule(self: &Arc<Self>) {
        // SeqCst pairs with the fence in `run`: either this sees the run's
        // `false`, or the run sees the mail that triggered this call.
        if self.scheduled.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(system) = self.system.upgrade() else {
            return;
        };
        // A continuation keeps its class one step lower each time, so a
        // busy agent that once got urgent mail does not stay urgent.
        let continuing = Priority::from_index(usize::from(self.running_at.load(Ordering::Acquire)))
            .and_then(|p| Priority::from_index(p.index().saturating_sub(1)))
            .unwrap_or(Priority::Low);
        let priority = self.priority.take().max(continuing);
        self.running_at.store(priority as u8, Ordering::Release);
        let me = self.clone();
        // Runs go at the mail's priority, or one class higher when that
        // class is full (never into Critical unless the mail is Critical);
        // otherwise the run waits for the system's next tick.
        let ceiling = match priority {
            Priority::Critical => Priority::Critical,
            Priority::High | Priority::Normal => Priority::High,
            Priority::Low => Priority::Normal,
        };
        let mut run = Some(move || me.run());
        for p in Priority::ALL
            .into_iter()
            .filter(|p| *p >= priority && *p <= ceiling)
        {
            let Some(f) = run.take() else { break };
            match system.balancer.try_spawn(p, f) {
                Ok(()) => return,
                Err(refused) => run = Some(refused.into_inner()),
            }
        }
        self.scheduled.store(false, Ordering::Release);
        if !self.in_backlog.swap(true, Ordering::AcqRel) {
            system.backlog(Arc::downgrade(self));
        }
    }

    /// Handles up to `BUDGET` messages in order, then yields.
    fn run(self: Arc<Self>) {
        let Some(system) = self.system.upgrade() else {
            return;
        };
        let facade = SwarmSystem::from_inner(system.clone());
        let mut handled = 0usize;
        let mut closed = false;
        let more = {
            let mut mailbox = lock(&self.mailbox);
            mailbox.declare_busy();
            let mut agent = lock(&self.agent);
            let mut ctx = AgentContext {
                id: self.id,
                sender: &self.sender,
                system: &facade,
            };
            while handled < BUDGET {
                match mailbox.try_recv() {
                    Err(_) => {
                        closed = true;
                        break;
                    }
                    Ok(Some(message)) => {
                        system.record_latency(message.created_at);
                        // A panicking handler loses that message only; the
                        // agent keeps running (and the panic is counted).
                        let outcome =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                agent.handle(message, &mut ctx);
                            }));
                        if outcome.is_err() {
                            system.count_panic();
                        }
                        handled += 1;
                    }
                    Ok(None) => break,
                }
            }
            self.sender.flush();
            handled == BUDGET
        };
        system.count_handled(handled);
        if !more {
            self.running_at
                .store(Priority::Low as u8, Ordering::Release);
        }
        self.scheduled.store(false, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        // A closed, drained mailbox needs no more runs.
        if more || (!closed && lock(&self.mailbox).declare_idle()) {
            self.schedule();
        }
    }

    /// Whether the agent has nothing left to do (for a draining shutdown).
    pub(crate) fn is_quiet(&self) -> bool {
        !self.scheduled.load(Ordering::Acquire) && lock(&self.mailbox).is_empty()
    }
}

/// Microseconds from `created` to now (0 if the clock went back).
pub(crate) fn age_micros(created: Timestamp) -> u64 {
    Timestamp::now()
        .as_micros()
        .saturating_sub(created.as_micros())
}
