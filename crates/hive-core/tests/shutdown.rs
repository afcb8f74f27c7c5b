//! Shutdown accounts for every accepted message, and never hangs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_core::cpubalance::BalancerConfig;
use hive_core::messaging::{CommunicatorConfig, UndeliveredReason};
use hive_core::{Agent, AgentId, Context, Message, SwarmSystem, SyncContext};

struct Slow;

impl Agent for Slow {
    async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn flood(sys: &SwarmSystem, to: AgentId, n: usize) {
    let sender = sys.sender();
    for _ in 0..n {
        sender
            .send(Message::new(AgentId::nil(), to, "job"))
            .unwrap();
    }
    sender.flush();
}

#[test]
fn a_short_drain_counts_every_queued_message_async() {
    for _ in 0..3 {
        let sys = SwarmSystem::builder().build().unwrap();
        let agent = sys.spawn(Slow).unwrap();
        flood(&sys, agent.id(), 2_000);
        let report = sys.shutdown(Duration::from_millis(1));
        assert!(!report.drained);
        assert_eq!(report.accepted, 2_000);
        assert_eq!(
            report.accepted,
            report.handled + report.undelivered,
            "{report:?}"
        );
        assert!(report.undelivered > 0);
        assert_eq!(
            report.undelivered_by_reason,
            vec![(UndeliveredReason::Shutdown, report.undelivered)]
        );
    }
}

#[test]
fn a_short_drain_counts_every_queued_message_sync() {
    for _ in 0..3 {
        let sys = SwarmSystem::builder().build().unwrap();
        let agent = sys
            .spawn_sync(|_: Message, _: &mut SyncContext<'_>| {
                std::thread::sleep(Duration::from_millis(1));
            })
            .unwrap();
        flood(&sys, agent.id(), 2_000);
        let report = sys.shutdown(Duration::from_millis(1));
        assert_eq!(report.accepted, 2_000);
        assert_eq!(
            report.accepted,
            report.handled + report.undelivered,
            "{report:?}"
        );
        assert!(report.undelivered > 0);
    }
}

#[test]
fn undelivered_counts_come_from_the_statistics_not_the_kept_messages() {
    let sys = SwarmSystem::builder().build().unwrap();
    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    let mut gate = Some(gate);
    struct Held(Option<tokio::sync::oneshot::Receiver<()>>);
    impl Agent for Held {
        async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
            if let Some(gate) = self.0.take() {
                let _ = gate.await;
            }
        }
    }
    let agent = sys.spawn(Held(gate.take())).unwrap();
    flood(&sys, agent.id(), 4_001);
    let report = sys.shutdown(Duration::from_millis(1));
    drop(open);
    assert_eq!(report.undelivered, 4_000, "one was in the handler");
    assert_eq!(report.handled, 1);
    assert!(report.undelivered_messages.len() <= 1_024);
}

/// Answers every message with a broadcast: two of them flood each other.
struct Shouter {
    heard: Arc<AtomicU64>,
    missed: Arc<AtomicU64>,
}

impl Agent for Shouter {
    async fn handle(&mut self, _m: Message, ctx: &mut Context) {
        self.heard.fetch_add(1, Ordering::Relaxed);
        for shout in ["again", "and again"] {
            // Refused once the system shuts down.
            if let Ok(report) = ctx.broadcast(shout).await {
                self.missed
                    .fetch_add(report.missed.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

#[test]
fn agents_broadcasting_into_small_mailboxes_do_not_deadlock() {
    let sys = SwarmSystem::builder()
        .communicator(CommunicatorConfig::default().mailbox_capacity(4))
        .agent_send_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let (heard, missed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for _ in 0..2 {
        sys.spawn(Shouter {
            heard: heard.clone(),
            missed: missed.clone(),
        })
        .unwrap();
    }
    let first = sys.communicator().agents()[0];
    sys.tell(first, "start").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while heard.load(Ordering::Relaxed) < 100 || missed.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "no progress: the agents deadlocked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = sys.shutdown(Duration::from_millis(100));
    assert_eq!(report.accepted, report.handled + report.undelivered);
}

#[test]
fn a_handler_that_never_returns_does_not_hang_shutdown() {
    struct Forever;
    impl Agent for Forever {
        async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
            std::future::pending::<()>().await;
        }
    }
    let sys = SwarmSystem::builder()
        .balancer(BalancerConfig::default().workers(1, 1))
        .build()
        .unwrap();
    let agent = sys.spawn(Forever).unwrap();
    flood(&sys, agent.id(), 3);
    let report = sys.shutdown(Duration::from_millis(50));
    assert_eq!(report.stuck_agents, 1);
    assert_eq!(report.handled, 1);
    assert_eq!(report.undelivered, 2);
}

#[test]
fn dropping_the_last_handle_stops_everything() {
    struct Tracked(Arc<AtomicU64>);
    impl Agent for Tracked {
        async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.store(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicU64::new(0));
    let sys = SwarmSystem::builder().build().unwrap();
    let agent = sys.spawn(Tracked(dropped.clone())).unwrap();
    flood(&sys, agent.id(), 100);
    drop(sys);
    let refused = agent.tell("after").unwrap_err();
    assert!(refused.is_closed(), "{refused}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent's task was never dropped"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
