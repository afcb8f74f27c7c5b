//! Sync agents: each runs on the CPU balancer, one *run* at a time. When
//! mail arrives, the mailbox's ready hook queues a run at the priority of
//! the most urgent waiting message; a run handles up to [`BUDGET`]
//! messages, flushes what the handler sent, then queues another run (more
//! mail) or declares the mailbox idle.
//!
//! An atomic flag keeps at most one run queued or running per agent, which
//! gives "one message at a time, in order". A run that finds its balancer
//! class full tries one class up (never into Critical unless its mail is
//! Critical), else waits in the system's backlog for the ticker's next
//! tick.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use hive_messaging::{Mailbox, Turns, UndeliveredReason};
use hive_types::{Message, Priority, ReceiptGuard};

use crate::agent::SyncAgent;
use crate::cell::{bump, AgentCell, Runner};
use crate::context::{AgentSender, SyncContext};
use crate::inner::{Backlogged, SwarmSystem, SystemInner};
use crate::supervision::StopReason;
use crate::supervision::{panic_message, AgentEventKind, Supervisor, Verdict};
use hive_types::sync::lock;

/// Messages an agent handles per run before it yields its worker.
pub(crate) const BUDGET: usize = 256;

/// How a fresh instance is made after a restart.
pub(crate) type SyncFactory = Box<dyn Fn() -> Box<dyn SyncAgent> + Send + Sync>;

/// The agent itself and what its life needs, under one lock.
struct Life {
    agent: Box<dyn SyncAgent>,
    factory: Option<SyncFactory>,
    supervisor: Supervisor,
    started: bool,
    ended: bool,
}

pub(crate) struct BalancerAgent {
    pub(crate) cell: Arc<AgentCell>,
    mailbox: Mutex<Mailbox>,
    life: Mutex<Life>,
    sender: AgentSender,
    /// Set while a run is queued or running: at most one at a time.
    turns: Turns,
    /// Priority of the current run (a continuation steps one class down).
    running_at: AtomicU8,
    /// Set while the agent waits in the system's backlog: it is there once.
    pub(crate) in_backlog: AtomicBool,
    /// Set while a restart's backoff runs: no run is queued meanwhile.
    paused: AtomicBool,
    system: Weak<SystemInner>,
    me: Weak<BalancerAgent>,
}

impl Runner for BalancerAgent {
    fn wake(&self) {
        if let Some(me) = self.me.upgrade() {
            me.schedule();
        }
    }
}

impl BalancerAgent {
    pub(crate) fn start(
        system: &Arc<SystemInner>,
        cell: Arc<AgentCell>,
        mut mailbox: Mailbox,
        agent: Box<dyn SyncAgent>,
        factory: Option<SyncFactory>,
        supervisor: Supervisor,
    ) -> Arc<BalancerAgent> {
        let runner = Arc::new_cyclic(|me: &Weak<BalancerAgent>| {
            let this = me.clone();
            let me = me.clone();
            // Mail arrived: make sure a run is queued. The mailbox is new,
            // so this is its first hook and cannot be refused.
            let _ = mailbox.on_ready(move || {
                if let Some(runner) = me.upgrade() {
                    runner.schedule();
                }
            });
            BalancerAgent {
                cell,
                mailbox: Mutex::new(mailbox),
                life: Mutex::new(Life {
                    agent,
                    factory,
                    supervisor,
                    started: false,
                    ended: false,
                }),
                sender: AgentSender::default(),
                turns: Turns::new(),
                running_at: AtomicU8::new(Priority::Low as u8),
                in_backlog: AtomicBool::new(false),
                paused: AtomicBool::new(false),
                system: Arc::downgrade(system),
                me: this,
            }
        });
        // The cell keeps the runner alive until the agent stops, and wakes
        // it for a stop request.
        runner.cell.attach(runner.clone());
        // The first run calls on_start and takes mail that came early.
        runner.schedule();
        runner
    }

    /// Queues a run on the balancer unless one is queued or running.
    pub(crate) fn schedule(self: &Arc<Self>) {
        if self.paused.load(Ordering::Acquire) {
            return;
        }
        // Either this sees the ending run's release, or that run sees the
        // mail that triggered this call (see `Turns`).
        if !self.turns.claim() {
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
        let priority = self.cell.probe.take_priority().max(continuing);
        self.running_at.store(priority as u8, Ordering::Release);
        let ceiling = match priority {
            Priority::Critical => Priority::Critical,
            Priority::High | Priority::Normal => Priority::High,
            Priority::Low => Priority::Normal,
        };
        let me = self.clone();
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
        self.turns.unclaim();
        if !self.in_backlog.swap(true, Ordering::AcqRel) {
            let me: Arc<dyn Backlogged> = self.clone();
            system.backlog(Arc::downgrade(&me));
        }
    }

    /// Handles up to `BUDGET` messages in order, then yields.
    fn run(self: Arc<Self>) {
        let Some(system) = self.system.upgrade() else {
            return;
        };
        let facade = SwarmSystem::internal(system.clone());
        let (more, closed) = self.run_budget(&system, &facade);
        if !more {
            self.running_at
                .store(Priority::Low as u8, Ordering::Release);
        }
        self.turns.end();
        if closed || self.paused.load(Ordering::Acquire) {
            return;
        }
        // A turn that spent its budget goes again without locking the
        // mailbox; one that emptied it looks once more.
        if more || self.turns.look_again(&mut lock(&self.mailbox)) {
            self.schedule();
        }
    }

    /// One run: returns (more mail may wait, the agent ended).
    fn run_budget(
        self: &Arc<Self>,
        system: &Arc<SystemInner>,
        facade: &SwarmSystem,
    ) -> (bool, bool) {
        let mut life = lock(&self.life);
        if life.ended {
            return (false, true);
        }
        let mut mailbox = lock(&self.mailbox);
        self.turns.begin(&mut mailbox);
        let cell = &*self.cell;
        let mut ctx = SyncContext {
            cell,
            sender: &self.sender,
            system: facade,
        };
        if !life.started {
            life.started = true;
            let Life { agent, .. } = &mut *life;
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agent.on_start(&mut ctx)));
            if let Err(payload) = outcome {
                return self.after_panic(
                    system,
                    facade,
                    &mut life,
                    &mut mailbox,
                    panic_message(&*payload),
                );
            }
        }
        let mut handled = 0usize;
        let mut ended = None;
        while handled < BUDGET {
            if let Some(why) = cell.cancelled() {
                ended = Some((cell.stop_reason(), mailbox.discard(why) as u64));
                break;
            }
            let message: Message = match mailbox.try_recv() {
                Err(_) => {
                    ended = Some((cell.stop_reason(), 0));
                    break;
                }
                Ok(None) => break,
                Ok(Some(m)) => m,
            };
            bump(&cell.counters.handled, 1);
            system.record_latency(
                message.created_at,
                cell.counters.handled.load(Ordering::Relaxed),
            );
            cell.begin(system.clock.coarse_ms());
            let started = cell.observed.as_ref().map(|_| Instant::now());
            let Life { agent, .. } = &mut *life;
            // A panic fails the message's receipt: a durable transport
            // delivers it again.
            let guard = ReceiptGuard::new(message.receipt.clone());
            #[cfg(feature = "tracing")]
            let span = system.links.handle_span(&message, cell);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(feature = "tracing")]
                let _entered = span.enter();
                agent.handle(message, &mut ctx)
            }));
            cell.end();
            if let (Some(observed), Some(started)) = (&cell.observed, started) {
                observed.record(started.elapsed());
            }
            handled += 1;
            match outcome.is_ok() {
                true => guard.done(),
                false => drop(guard),
            }
            if let Err(payload) = outcome {
                self.sender.flush();
                return self.after_panic(
                    system,
                    facade,
                    &mut life,
                    &mut mailbox,
                    panic_message(&*payload),
                );
            }
        }
        self.sender.flush();
        if let Some((reason, dropped)) = ended {
            self.end(system, facade, &mut life, &mut mailbox, reason, dropped);
            return (false, true);
        }
        (handled == BUDGET, false)
    }

    /// A handler panicked: restart (maybe after a backoff), or stop.
    fn after_panic(
        self: &Arc<Self>,
        system: &Arc<SystemInner>,
        facade: &SwarmSystem,
        life: &mut Life,
        mailbox: &mut Mailbox,
        panic: String,
    ) -> (bool, bool) {
        let cell = &*self.cell;
        bump(&cell.counters.panics, 1);
        system.count_panic(cell);
        system.emit(cell, AgentEventKind::Panicked(panic));
        match life.supervisor.after_panic() {
            Verdict::Restart { after, restarts } => {
                if let Some(factory) = &life.factory {
                    life.agent = factory();
                    life.started = false;
                }
                bump(&cell.counters.restarts, 1);
                system.emit(cell, AgentEventKind::Restarted { restarts, after });
                if after.is_zero() {
                    return (true, false);
                }
                // Resume after the backoff, on the runtime's timer.
                self.paused.store(true, Ordering::Release);
                let me = self.clone();
                let timer = system.sleep(after);
                system.runtime.spawn(async move {
                    timer.await;
                    me.paused.store(false, Ordering::Release);
                    me.schedule();
                });
                (false, false)
            }
            Verdict::Stop => {
                system.emit(cell, AgentEventKind::Escalated);
                let dropped = mailbox.discard(UndeliveredReason::Cancelled) as u64;
                self.end(system, facade, life, mailbox, StopReason::Panicked, dropped);
                (false, true)
            }
        }
    }

    /// The agent's last act: `on_stop`, its leftover mail reported, the
    /// system told.
    fn end(
        &self,
        system: &Arc<SystemInner>,
        facade: &SwarmSystem,
        life: &mut Life,
        mailbox: &mut Mailbox,
        reason: StopReason,
        dropped: u64,
    ) {
        life.ended = true;
        let mut ctx = SyncContext {
            cell: &self.cell,
            sender: &self.sender,
            system: facade,
        };
        let Life { agent, .. } = life;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            agent.on_stop(&mut ctx, reason)
        }));
        self.sender.flush();
        let leftover = match reason {
            StopReason::Shutdown => UndeliveredReason::Shutdown,
            _ => UndeliveredReason::Cancelled,
        };
        let dropped = dropped + mailbox.discard(leftover) as u64;
        system.agent_stopped(&self.cell, reason, dropped);
    }
}

impl Backlogged for BalancerAgent {
    fn retry(self: Arc<Self>) {
        self.in_backlog.store(false, Ordering::Release);
        self.schedule();
    }
}
