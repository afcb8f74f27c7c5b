//! Hazards of agents on a shared balancer: full mailboxes, cycles, a
//! closed communicator, bad configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hive_core::cpubalance::BalancerConfig;
use hive_core::messaging::CommunicatorConfig;
use hive_core::{AgentId, HiveError, Message, SwarmSystem, SyncContext};

const WAIT: Duration = Duration::from_secs(30);

fn one_worker(mailbox_capacity: usize) -> SwarmSystem {
    SwarmSystem::builder()
        .balancer(BalancerConfig::default().workers(1, 1))
        .communicator(CommunicatorConfig::default().mailbox_capacity(mailbox_capacity))
        .agent_send_timeout(Duration::from_millis(20))
        .build()
        .unwrap()
}

#[test]
fn an_agent_sending_to_itself_with_a_full_mailbox_is_refused_not_stuck() {
    let sys = one_worker(4);
    let refused = Arc::new(AtomicU64::new(0));
    let r = refused.clone();
    let me = AgentId::random();
    sys.agent()
        .id(me)
        .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
            if m.payload.as_ref() == b"start" {
                for _ in 0..100 {
                    if ctx.send(Message::new(me, me, &b"echo"[..])).is_err() {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .unwrap();
    sys.sender()
        .send(Message::new(AgentId::nil(), me, &b"start"[..]))
        .unwrap();
    sys.sender().flush();
    assert!(sys.quiesce(WAIT), "the agent finished its run");
    let refused = refused.load(Ordering::Relaxed);
    assert!(
        refused > 0 && refused < 100,
        "some fit, the rest came back: {refused}"
    );
    let accepted = 100 - refused;
    assert_eq!(
        sys.handled(),
        1 + accepted,
        "every accepted echo was handled"
    );
}

#[test]
fn two_agents_filling_each_others_mailboxes_do_not_deadlock() {
    let sys = one_worker(4);
    let refused = Arc::new(AtomicU64::new(0));
    let (a, b) = (AgentId::random(), AgentId::random());
    for (me, other) in [(a, b), (b, a)] {
        let r = refused.clone();
        sys.agent()
            .id(me)
            .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
                // Each message starts a burst to the other agent.
                if m.payload.len() < 3 {
                    for _ in 0..20 {
                        let next = Message::new(me, other, vec![0u8; m.payload.len() + 1]);
                        if ctx.send(next).is_err() {
                            r.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .unwrap();
    }
    sys.sender()
        .send(Message::new(AgentId::nil(), a, Vec::new()))
        .unwrap();
    sys.sender().flush();
    assert!(sys.quiesce(WAIT), "the cycle ended");
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "full mailboxes handed messages back"
    );
    assert_eq!(sys.shutdown(WAIT).undelivered, 0);
}

#[test]
fn more_senders_than_workers_into_one_full_mailbox_lose_nothing() {
    // Two workers and no spare ones: every worker can be a sender waiting
    // for room in the collector's mailbox while the collector's run sits
    // queued. The waiting senders run it themselves.
    let sys = SwarmSystem::builder()
        .balancer(BalancerConfig::default().workers(2, 2).blocking_workers(0))
        .communicator(CommunicatorConfig::default().mailbox_capacity(8))
        .agent_send_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (collected, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let c = collected.clone();
    let collector = sys
        .spawn_sync(move |_m: Message, _ctx: &mut SyncContext<'_>| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap()
        .id();
    let producers: Vec<AgentId> = (0..8)
        .map(|_| {
            let r = refused.clone();
            sys.spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
                if ctx
                    .send(Message::new(ctx.id(), collector, m.payload))
                    .is_err()
                {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            })
            .unwrap()
            .id()
        })
        .collect();
    for i in 0..400u32 {
        let to = producers[i as usize % producers.len()];
        sys.tell(to, i.to_le_bytes().to_vec()).unwrap();
    }
    assert!(sys.quiesce(WAIT), "everything was handled");
    assert_eq!(refused.load(Ordering::Relaxed), 0, "no result handed back");
    assert_eq!(collected.load(Ordering::Relaxed), 400);
    assert_eq!(sys.shutdown(WAIT).undelivered, 0);
}

#[test]
fn agents_stop_running_once_the_communicator_is_closed_and_drained() {
    let sys = SwarmSystem::builder()
        .communicator(CommunicatorConfig::default().linger(Duration::from_secs(60)))
        .build()
        .unwrap();
    let agent = sys
        .spawn_sync(|_: Message, _: &mut SyncContext<'_>| {})
        .unwrap()
        .id();
    let sender = sys.sender();
    sender
        .send(Message::new(AgentId::nil(), agent, &b"held"[..]))
        .unwrap();
    sys.communicator().close(); // delivers the held batch, then closes
    assert!(sys.quiesce(WAIT));
    assert_eq!(sys.handled(), 1);
    let runs = sys.balancer().stats().completed();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        sys.balancer().stats().completed(),
        runs,
        "a closed, empty mailbox schedules no more runs"
    );
}

#[test]
fn bad_settings_are_typed_errors() {
    let zero_tick = SwarmSystem::builder().tick_interval(Duration::ZERO).build();
    assert!(matches!(
        zero_tick,
        Err(HiveError::Config {
            field: "tick_interval",
            ..
        })
    ));

    let no_threads = SwarmSystem::builder().agent_threads(0).build();
    assert!(matches!(
        no_threads,
        Err(HiveError::Config {
            field: "agent_threads",
            ..
        })
    ));
}
