//! Lifecycle and supervision: stop, restart policies, backoff,
//! escalation, the watchdog.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hive_core::messaging::UndeliveredReason;
use hive_core::{
    Agent, AgentEvent, AgentEventKind, AgentId, Backoff, Context, Message, Overrun, RestartPolicy,
    StopMode, StopReason, SwarmSystem, SyncContext, Watchdog,
};

const WAIT: Duration = Duration::from_secs(30);

type Events = Arc<Mutex<Vec<AgentEvent>>>;

fn system_with_events() -> (SwarmSystem, Events) {
    let events: Events = Arc::default();
    let log = events.clone();
    let sys = SwarmSystem::builder()
        .on_event(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    (sys, events)
}

fn kinds(events: &Events, agent: AgentId) -> Vec<AgentEventKind> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.agent == agent)
        .map(|e| e.kind.clone())
        .collect()
}

/// Panics on payload "boom"; counts the messages its instance saw.
struct Fragile {
    seen: u64,
    total: Arc<AtomicU64>,
    starts: Arc<AtomicU64>,
    last_seen: Arc<AtomicU64>,
}

impl Fragile {
    fn new(total: &Arc<AtomicU64>, starts: &Arc<AtomicU64>, last_seen: &Arc<AtomicU64>) -> Self {
        Fragile {
            seen: 0,
            total: total.clone(),
            starts: starts.clone(),
            last_seen: last_seen.clone(),
        }
    }
}

impl Agent for Fragile {
    async fn on_start(&mut self, _ctx: &mut Context) {
        self.starts.fetch_add(1, Ordering::SeqCst);
    }

    async fn handle(&mut self, m: Message, _ctx: &mut Context) {
        self.seen += 1;
        self.last_seen.store(self.seen, Ordering::SeqCst);
        assert!(m.payload.as_ref() != b"boom", "boom");
        self.total.fetch_add(1, Ordering::SeqCst);
    }
}

fn send_all(sys: &SwarmSystem, to: AgentId, payloads: &[&'static str]) {
    let sender = sys.sender();
    for p in payloads {
        sender
            .send(Message::new(AgentId::nil(), to, p.as_bytes()))
            .unwrap();
    }
    sender.flush();
}

#[test]
fn never_stops_the_agent_reports_its_mail_and_escalates() {
    let (sys, events) = system_with_events();
    let (total, starts, last) = (Arc::default(), Arc::default(), Arc::default());
    let agent = sys
        .agent()
        .restart(RestartPolicy::Never)
        .spawn(Fragile::new(&total, &starts, &last))
        .unwrap();
    send_all(&sys, agent.id(), &["a", "boom", "b", "c"]);
    assert!(sys.quiesce(WAIT));
    assert!(!agent.is_running());
    let k = kinds(&events, agent.id());
    assert!(k.contains(&AgentEventKind::Escalated), "{k:?}");
    assert!(
        k.contains(&AgentEventKind::Stopped(StopReason::Panicked)),
        "{k:?}"
    );
    assert_eq!(total.load(Ordering::SeqCst), 1, "only 'a' was handled");
    let shutdown = sys.shutdown(WAIT);
    assert_eq!(
        shutdown.undelivered_by_reason,
        vec![(UndeliveredReason::Cancelled, 2)],
        "b and c were reported"
    );
    assert_eq!(shutdown.accepted, shutdown.handled + shutdown.undelivered);
}

#[test]
fn always_restarts_with_a_fresh_instance_from_the_factory() {
    let (sys, events) = system_with_events();
    let (total, starts, last) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (t, s, l) = (total.clone(), starts.clone(), last.clone());
    let agent = sys
        .agent()
        .restart(RestartPolicy::Always)
        .spawn_with(move || Fragile::new(&t, &s, &l))
        .unwrap();
    send_all(&sys, agent.id(), &["a", "b", "boom", "c", "boom", "d"]);
    assert!(sys.quiesce(WAIT));
    assert_eq!(total.load(Ordering::SeqCst), 4);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "started, then two restarts"
    );
    assert_eq!(
        last.load(Ordering::SeqCst),
        1,
        "the last instance saw only 'd'"
    );
    let restarts = kinds(&events, agent.id())
        .into_iter()
        .filter(|k| matches!(k, AgentEventKind::Restarted { .. }))
        .count();
    assert_eq!(restarts, 2);
    assert!(agent.is_running());
}

#[test]
fn without_a_factory_a_restart_keeps_the_state() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (total, starts, last) = (Arc::default(), Arc::default(), Arc::new(AtomicU64::new(0)));
    let agent = sys.spawn(Fragile::new(&total, &starts, &last)).unwrap();
    send_all(&sys, agent.id(), &["a", "boom", "b"]);
    assert!(sys.quiesce(WAIT));
    assert_eq!(last.load(Ordering::SeqCst), 3, "one instance saw all three");
}

#[test]
fn at_most_n_restarts_in_a_window_then_escalation() {
    let (sys, events) = system_with_events();
    let (total, starts, last) = (Arc::default(), Arc::default(), Arc::default());
    let agent = sys
        .agent()
        .restart(RestartPolicy::at_most(2, Duration::from_secs(600)))
        .spawn(Fragile::new(&total, &starts, &last))
        .unwrap();
    send_all(&sys, agent.id(), &["boom", "boom", "boom", "after"]);
    assert!(sys.quiesce(WAIT));
    assert!(!agent.is_running());
    let k = kinds(&events, agent.id());
    let restarts = k
        .iter()
        .filter(|k| matches!(k, AgentEventKind::Restarted { .. }))
        .count();
    assert_eq!(restarts, 2, "{k:?}");
    assert!(k.contains(&AgentEventKind::Escalated));
    assert_eq!(total.load(Ordering::SeqCst), 0, "'after' was never handled");
}

#[test]
fn backoff_grows_between_restarts() {
    let (sys, events) = system_with_events();
    let (total, starts, last) = (Arc::default(), Arc::default(), Arc::default());
    let agent = sys
        .agent()
        .backoff(Backoff::exponential(
            Duration::from_millis(5),
            Duration::from_millis(12),
        ))
        .spawn(Fragile::new(&total, &starts, &last))
        .unwrap();
    send_all(&sys, agent.id(), &["boom", "boom", "boom", "ok"]);
    assert!(sys.quiesce(WAIT));
    let waits: Vec<Duration> = kinds(&events, agent.id())
        .into_iter()
        .filter_map(|k| match k {
            AgentEventKind::Restarted { after, .. } => Some(after),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        vec![
            Duration::from_millis(5),
            Duration::from_millis(10),
            Duration::from_millis(12)
        ]
    );
    assert_eq!(
        total.load(Ordering::SeqCst),
        1,
        "'ok' ran after the backoffs"
    );
}

#[test]
fn sync_agents_restart_from_their_factory_too() {
    let (sys, events) = system_with_events();
    let instances = Arc::new(AtomicU64::new(0));
    let made = instances.clone();
    let agent = sys
        .agent()
        .spawn_sync_with(move || {
            made.fetch_add(1, Ordering::SeqCst);
            |m: Message, _: &mut SyncContext<'_>| {
                assert!(m.payload.as_ref() != b"boom", "boom");
            }
        })
        .unwrap();
    send_all(&sys, agent.id(), &["a", "boom", "b"]);
    assert!(sys.quiesce(WAIT));
    assert_eq!(instances.load(Ordering::SeqCst), 2);
    assert!(kinds(&events, agent.id())
        .iter()
        .any(|k| matches!(k, AgentEventKind::Restarted { restarts: 1, .. })));
}

/// Sleeps for as long as the payload says (milliseconds).
struct Sleeper {
    handled: Arc<AtomicU64>,
}

impl Agent for Sleeper {
    async fn handle(&mut self, m: Message, _ctx: &mut Context) {
        let ms = u64::from_le_bytes(m.payload.as_ref().try_into().unwrap());
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

fn sleep_for(sys: &SwarmSystem, to: AgentId, ms: &[u64]) {
    let sender = sys.sender();
    for m in ms {
        sender
            .send(Message::new(AgentId::nil(), to, m.to_le_bytes().to_vec()))
            .unwrap();
    }
    sender.flush();
}

#[test]
fn the_watchdog_cancels_an_async_handler_past_its_limit() {
    let (sys, events) = system_with_events();
    let handled = Arc::new(AtomicU64::new(0));
    let agent = sys
        .agent()
        .watchdog(Some(Watchdog {
            limit: Duration::from_millis(50),
            action: Overrun::Cancel,
        }))
        .spawn(Sleeper {
            handled: handled.clone(),
        })
        .unwrap();
    sleep_for(&sys, agent.id(), &[3_600_000, 1]);
    assert!(sys.quiesce(WAIT), "the hour-long handler was cancelled");
    assert_eq!(handled.load(Ordering::SeqCst), 1, "the next message ran");
    assert!(kinds(&events, agent.id()).iter().any(|k| matches!(
        k,
        AgentEventKind::Overrun {
            cancelled: true,
            ..
        }
    )));
}

#[test]
fn the_watchdog_reports_a_long_handler_and_lets_it_run() {
    let events: Events = Arc::default();
    let log = events.clone();
    let sys = SwarmSystem::builder()
        .tick_interval(Duration::from_millis(10))
        .watchdog(Some(Watchdog {
            limit: Duration::from_millis(30),
            action: Overrun::Report,
        }))
        .on_event(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let agent = sys
        .spawn(Sleeper {
            handled: handled.clone(),
        })
        .unwrap();
    sleep_for(&sys, agent.id(), &[300]);
    assert!(sys.quiesce(WAIT));
    assert_eq!(handled.load(Ordering::SeqCst), 1, "it was not cancelled");
    let overruns: Vec<AgentEventKind> = kinds(&events, agent.id())
        .into_iter()
        .filter(|k| matches!(k, AgentEventKind::Overrun { .. }))
        .collect();
    assert_eq!(overruns.len(), 1, "reported once: {overruns:?}");
    assert!(matches!(
        overruns[0],
        AgentEventKind::Overrun {
            cancelled: false,
            ..
        }
    ));
}

#[test]
fn stop_drain_handles_the_mail_stop_cancel_reports_it() {
    let sys = SwarmSystem::builder().build().unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let drained = sys
        .spawn(Sleeper {
            handled: handled.clone(),
        })
        .unwrap();
    sleep_for(&sys, drained.id(), &[5; 20]);
    let report = drained.stop(StopMode::Drain, WAIT).unwrap();
    assert_eq!((report.handled, report.dropped), (20, 0));
    assert_eq!(report.reason, StopReason::Stopped);
    let refused = drained.tell("too late").unwrap_err();
    assert!(matches!(
        refused.error(),
        hive_core::HiveError::UnknownAgent(_)
    ));

    let cancelled = sys
        .spawn(Sleeper {
            handled: Arc::new(AtomicU64::new(0)),
        })
        .unwrap();
    sleep_for(&sys, cancelled.id(), &[20; 50]);
    let report = cancelled.stop(StopMode::Cancel, WAIT).unwrap();
    assert!(report.dropped > 0, "{report:?}");
    assert_eq!(report.handled + report.dropped, 50, "{report:?}");
    let stats = sys.communicator().stats();
    assert_eq!(
        stats.undeliverable_for(UndeliveredReason::Cancelled),
        report.dropped
    );
}
