//! Async agents: concurrency of I/O-bound handlers, request/reply, names,
//! priority lanes, time to live, lifecycle messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hive_core::messaging::UndeliveredReason;
use hive_core::{
    Agent, AgentId, Context, HiveError, LifecycleEvent, Message, MessageKind, Priority, StopReason,
    SwarmSystem,
};

const WAIT: Duration = Duration::from_secs(30);

/// Counts how many of its kind are inside `handle` at once.
struct Io {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicU64>,
}

impl Agent for Io {
    async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
        let inside = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(inside, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await; // the "LLM call"
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_thousand_io_bound_agents_wait_at_the_same_time() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (now, peak, done) = (Arc::default(), Arc::default(), Arc::new(AtomicU64::new(0)));
    let agents: Vec<AgentId> = (0..1_000)
        .map(|_| {
            sys.spawn(Io {
                now: Arc::clone(&now),
                peak: Arc::clone(&peak),
                done: done.clone(),
            })
            .unwrap()
            .id()
        })
        .collect();
    let sender = sys.sender();
    for _ in 0..3 {
        for &a in &agents {
            sender.send(Message::new(AgentId::nil(), a, "go")).unwrap();
        }
    }
    sender.flush();
    assert!(sys.quiesce(WAIT));
    assert_eq!(done.load(Ordering::SeqCst), 3_000);
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak >= 900, "only {peak} handlers were awaiting at once");
    let report = sys.shutdown(WAIT);
    assert_eq!(report.accepted, report.handled + report.undelivered);
    assert_eq!(report.handled, 3_000);
}

/// One message at a time: never two handlers of one agent at once.
struct Serial {
    inside: Arc<AtomicUsize>,
    overlap: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<u32>>>,
}

impl Agent for Serial {
    async fn handle(&mut self, m: Message, _ctx: &mut Context) {
        if self.inside.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlap.fetch_add(1, Ordering::SeqCst);
        }
        tokio::task::yield_now().await;
        let n = u32::from_le_bytes(m.payload.as_ref().try_into().unwrap());
        self.seen.lock().unwrap().push(n);
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn an_agent_handles_one_message_at_a_time_in_order() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (inside, overlap, seen) = (Arc::default(), Arc::default(), Arc::default());
    let agent = sys
        .spawn(Serial {
            inside,
            overlap: Arc::clone(&overlap),
            seen: Arc::clone(&seen),
        })
        .unwrap();
    let sender = sys.sender();
    for i in 0..5_000u32 {
        sender
            .send(Message::new(
                AgentId::nil(),
                &agent,
                i.to_le_bytes().to_vec(),
            ))
            .unwrap();
    }
    sender.flush();
    assert!(sys.quiesce(WAIT));
    assert_eq!(overlap.load(Ordering::SeqCst), 0);
    assert_eq!(*seen.lock().unwrap(), (0..5_000).collect::<Vec<_>>());
}

struct Echo {
    delay: Duration,
}

impl Agent for Echo {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        tokio::time::sleep(self.delay).await;
        let _ = ctx.reply(&m, m.payload.clone()).await;
    }
}

/// Asks another agent from inside a handler and reports the answer.
struct Asker {
    target: AgentId,
}

impl Agent for Asker {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        let answer = match ctx
            .ask(self.target, m.payload.clone(), Duration::from_secs(5))
            .await
        {
            Ok(reply) => reply.payload,
            Err(e) => e.to_string().into(),
        };
        let _ = ctx.reply(&m, answer).await;
    }
}

#[test]
fn ask_from_outside_and_between_agents() {
    let sys = SwarmSystem::builder().build().unwrap();
    let echo = sys
        .spawn(Echo {
            delay: Duration::ZERO,
        })
        .unwrap();
    let asker = sys.spawn(Asker { target: echo.id() }).unwrap();
    for i in 0..200u32 {
        let reply = sys
            .ask(
                asker.id(),
                i.to_le_bytes().to_vec(),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(reply.payload.as_ref(), &i.to_le_bytes());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt
        .block_on(echo.ask_async("async", Duration::from_secs(10)))
        .unwrap();
    assert_eq!(reply.kind, MessageKind::Response);
    assert_eq!(sys.communicator().stats().replies, 401);
}

#[test]
fn an_ask_times_out_and_its_late_reply_is_counted_not_delivered() {
    let sys = SwarmSystem::builder().build().unwrap();
    let slow = sys
        .spawn(Echo {
            delay: Duration::from_millis(300),
        })
        .unwrap();
    let err = slow.ask("late", Duration::from_millis(20)).unwrap_err();
    assert!(matches!(err, HiveError::Timeout { .. }), "{err}");
    assert!(sys.quiesce(WAIT));
    let stats = sys.communicator().stats();
    assert_eq!(stats.undeliverable_for(UndeliveredReason::LateReply), 1);
    let report = sys.shutdown(WAIT);
    assert_eq!(
        report.accepted,
        report.handled + report.replies + report.undelivered
    );
}

#[test]
fn names_are_looked_up_unique_and_freed_when_the_agent_stops() {
    let sys = SwarmSystem::builder().build().unwrap();
    let planner = sys
        .agent()
        .name("planner")
        .spawn(Echo {
            delay: Duration::ZERO,
        })
        .unwrap();
    assert_eq!(sys.lookup("planner").unwrap().id(), planner.id());
    assert_eq!(planner.name().as_deref(), Some("planner"));
    let taken = sys
        .agent()
        .name("planner")
        .spawn(Echo {
            delay: Duration::ZERO,
        })
        .unwrap_err();
    assert!(matches!(taken, HiveError::NameTaken(ref n) if n == "planner"));
    sys.register_name(planner.id(), "lead").unwrap();
    assert_eq!(sys.lookup("lead").unwrap().id(), planner.id());
    planner.stop(hive_core::StopMode::Drain, WAIT).unwrap();
    assert!(sys.lookup("planner").is_none() && sys.lookup("lead").is_none());
    assert!(!planner.is_running());
    let again = sys.agent().name("planner").spawn(Echo {
        delay: Duration::ZERO,
    });
    assert!(again.is_ok(), "the name was freed");
}

/// Records the priority of every message it handles; the first message
/// holds it (`held` is set) until the gate opens.
struct Recorder {
    log: Arc<Mutex<Vec<Priority>>>,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    held: Arc<AtomicUsize>,
}

impl Recorder {
    fn new(log: &Arc<Mutex<Vec<Priority>>>, gate: tokio::sync::oneshot::Receiver<()>) -> Self {
        Recorder {
            log: Arc::clone(log),
            gate: Some(gate),
            held: Arc::default(),
        }
    }
}

impl Agent for Recorder {
    async fn handle(&mut self, m: Message, _ctx: &mut Context) {
        if let Some(gate) = self.gate.take() {
            self.held.store(1, Ordering::SeqCst);
            let _ = gate.await; // hold the agent until everything is queued
            return;
        }
        self.log.lock().unwrap().push(m.priority);
    }
}

/// Sends the holding message and waits until the agent holds.
fn hold(sys: &SwarmSystem, agent: AgentId, held: &AtomicUsize) {
    sys.tell(agent, "hold").unwrap();
    while held.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_critical_message_is_handled_before_queued_low_mail() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (open, gate) = tokio::sync::oneshot::channel();
    let log: Arc<Mutex<Vec<Priority>>> = Arc::default();
    let recorder = Recorder::new(&log, gate);
    let held = recorder.held.clone();
    let agent = sys.spawn(recorder).unwrap();
    hold(&sys, agent.id(), &held);
    let sender = sys.sender();
    for _ in 0..2_000 {
        let low = Message::builder(AgentId::nil(), agent.id())
            .priority(Priority::Low)
            .build();
        sender.send(low).unwrap();
    }
    let critical = Message::builder(AgentId::nil(), agent.id())
        .priority(Priority::Critical)
        .build();
    sender.send(critical).unwrap();
    sender.flush();
    open.send(()).unwrap();
    assert!(sys.quiesce(WAIT));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2_001);
    assert_eq!(log[0], Priority::Critical, "behind 2,000 Low messages");
}

#[test]
fn expired_mail_is_not_handled_but_counted() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (open, gate) = tokio::sync::oneshot::channel();
    let log: Arc<Mutex<Vec<Priority>>> = Arc::default();
    let recorder = Recorder::new(&log, gate);
    let held = recorder.held.clone();
    let agent = sys.spawn(recorder).unwrap();
    hold(&sys, agent.id(), &held);
    let sender = sys.sender();
    for i in 0..10 {
        let m = Message::builder(AgentId::nil(), agent.id())
            .ttl(Duration::from_millis(if i < 7 { 1 } else { 60_000 }))
            .build();
        sender.send(m).unwrap();
    }
    sender.flush();
    std::thread::sleep(Duration::from_millis(20));
    open.send(()).unwrap();
    assert!(sys.quiesce(WAIT));
    assert_eq!(log.lock().unwrap().len(), 3);
    let report = sys.shutdown(WAIT);
    assert_eq!(report.undelivered, 7);
    assert_eq!(
        report.undelivered_by_reason,
        vec![(UndeliveredReason::Expired, 7)]
    );
    assert_eq!(report.accepted, report.handled + report.undelivered);
}

/// Spawns a helper agent the first time it hears from anyone.
struct Spawner {
    spawned: Arc<AtomicU64>,
}

impl Agent for Spawner {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        let helper = ctx
            .system()
            .spawn(Echo {
                delay: Duration::ZERO,
            })
            .unwrap();
        self.spawned.fetch_add(1, Ordering::SeqCst);
        let answer = ctx
            .ask(helper.id(), m.payload.clone(), Duration::from_secs(5))
            .await;
        let _ = ctx
            .reply(&m, answer.map(|a| a.payload).unwrap_or_default())
            .await;
    }
}

/// Collects lifecycle messages.
struct Watcher {
    events: Arc<Mutex<Vec<LifecycleEvent>>>,
}

impl Agent for Watcher {
    async fn handle(&mut self, m: Message, _ctx: &mut Context) {
        if let Some(event) = LifecycleEvent::decode(&m) {
            self.events.lock().unwrap().push(event);
        }
    }
}

#[test]
fn agents_spawn_agents_and_subscribers_hear_of_it() {
    let sys = SwarmSystem::builder().build().unwrap();
    let events: Arc<Mutex<Vec<LifecycleEvent>>> = Arc::default();
    let watcher = sys
        .spawn(Watcher {
            events: Arc::clone(&events),
        })
        .unwrap();
    sys.subscribe(watcher.id()).unwrap();
    let spawned = Arc::new(AtomicU64::new(0));
    let spawner = sys
        .agent()
        .name("spawner")
        .spawn(Spawner {
            spawned: spawned.clone(),
        })
        .unwrap();
    let reply = spawner.ask("hi", Duration::from_secs(10)).unwrap();
    assert_eq!(reply.payload.as_ref(), b"hi");
    assert_eq!(spawned.load(Ordering::SeqCst), 1);
    spawner.stop(hive_core::StopMode::Drain, WAIT).unwrap();
    assert!(sys.quiesce(WAIT));
    let events = events.lock().unwrap();
    assert!(events.contains(&LifecycleEvent::Joined {
        agent: spawner.id(),
        name: Some("spawner".into())
    }));
    assert!(events.contains(&LifecycleEvent::Left {
        agent: spawner.id(),
        name: Some("spawner".into()),
        reason: StopReason::Stopped
    }));
    let joined = events
        .iter()
        .filter(|e| matches!(e, LifecycleEvent::Joined { .. }))
        .count();
    assert_eq!(joined, 2, "the spawner and its helper: {events:?}");
}
