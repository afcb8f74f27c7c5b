//! The facade end to end: ping-pong, order, priority, shutdown, report.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hive_core::cpubalance::BalancerConfig;
use hive_core::{AgentId, Message, MessageKind, Priority, SwarmSystem, SyncContext};

const WAIT: Duration = Duration::from_secs(30);

fn system(workers: usize) -> SwarmSystem {
    SwarmSystem::builder()
        .balancer(BalancerConfig::default().workers(workers, workers))
        .build()
        .unwrap()
}

#[test]
fn agents_play_ping_pong() {
    let sys = system(2);
    let rounds = Arc::new(AtomicU64::new(0));
    let (ping, pong) = (AgentId::random(), AgentId::random());
    let r = rounds.clone();
    sys.agent()
        .id(ping)
        .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
            let n = u32::from_le_bytes(m.payload.as_ref().try_into().unwrap());
            r.fetch_add(1, Ordering::Relaxed);
            if n < 10_000 {
                ctx.send(Message::new(ctx.id(), pong, (n + 1).to_le_bytes().to_vec()))
                    .unwrap();
            }
        })
        .unwrap();
    sys.agent()
        .id(pong)
        .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
            ctx.reply(&m, m.payload.clone()).unwrap();
        })
        .unwrap();
    sys.sender()
        .send(Message::new(ping, pong, 0u32.to_le_bytes().to_vec()))
        .unwrap();
    assert!(sys.quiesce(WAIT));
    assert_eq!(
        rounds.load(Ordering::Relaxed),
        10_001,
        "replies 0..=10000 reach ping"
    );
    assert_eq!(sys.handled(), 20_002);
}

#[test]
fn a_panicking_handler_does_not_stop_its_agent() {
    let sys = system(2);
    let ok = Arc::new(AtomicU64::new(0));
    let o = ok.clone();
    let fragile = sys
        .spawn_sync(move |m: Message, _: &mut SyncContext<'_>| {
            assert!(m.payload[0].is_multiple_of(2), "odd input");
            o.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap()
        .id();
    let sender = sys.sender();
    for i in 0..100u8 {
        sender
            .send(Message::new(AgentId::nil(), fragile, vec![i]))
            .unwrap();
    }
    sender.flush();
    assert!(sys.quiesce(WAIT));
    assert_eq!(ok.load(Ordering::Relaxed), 50);
    assert_eq!(sys.handled(), 100);
}

#[test]
fn each_agent_sees_each_senders_messages_in_order() {
    let sys = system(2);
    let seen: Arc<Mutex<Vec<(u8, u32)>>> = Arc::default();
    let log = seen.clone();
    let sink = sys
        .spawn_sync(move |m: Message, _: &mut SyncContext<'_>| {
            let p = m.payload.as_ref();
            log.lock()
                .unwrap()
                .push((p[0], u32::from_le_bytes(p[1..5].try_into().unwrap())));
        })
        .unwrap()
        .id();
    let producers: Vec<_> = (0..4u8)
        .map(|k| {
            let sender = sys.sender();
            std::thread::spawn(move || {
                for i in 0..5_000u32 {
                    let mut p = vec![k];
                    p.extend_from_slice(&i.to_le_bytes());
                    sender.send(Message::new(AgentId::nil(), sink, p)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    assert!(sys.quiesce(WAIT));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20_000);
    for k in 0..4u8 {
        let order: Vec<u32> = seen
            .iter()
            .filter(|(s, _)| *s == k)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(order, (0..5_000).collect::<Vec<_>>(), "sender {k}");
    }
}

#[test]
fn a_critical_message_runs_its_agent_before_low_ones() {
    let sys = system(1);
    let order: Arc<Mutex<Vec<Priority>>> = Arc::default();
    // Occupy the only worker until the test has queued everything.
    let (release, gate) = mpsc::channel::<()>();
    let started = Arc::new(AtomicU64::new(0));
    let s = started.clone();
    sys.balancer()
        .spawn(Priority::Critical, move || {
            s.store(1, Ordering::SeqCst);
            let _ = gate.recv();
        })
        .unwrap();
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let mut targets = Vec::new();
    for _ in 0..20 {
        let log = order.clone();
        targets.push(
            sys.spawn_sync(move |m: Message, _: &mut SyncContext<'_>| {
                log.lock().unwrap().push(m.priority)
            })
            .unwrap()
            .id(),
        );
    }
    let sender = sys.sender();
    for &t in &targets[1..] {
        sender
            .send(
                Message::builder(AgentId::nil(), t)
                    .priority(Priority::Low)
                    .build(),
            )
            .unwrap();
    }
    sender
        .send(
            Message::builder(AgentId::nil(), targets[0])
                .priority(Priority::Critical)
                .build(),
        )
        .unwrap();
    sender.flush();
    std::thread::sleep(Duration::from_millis(50)); // every agent run is queued
    drop(release);
    assert!(sys.quiesce(WAIT));
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 20);
    assert_eq!(order[0], Priority::Critical, "{order:?}");
}

#[test]
fn shutdown_drains_and_counts() {
    let sys = system(2);
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let worker = sys
        .spawn_sync(move |m: Message, ctx: &mut SyncContext<'_>| {
            // Real CPU work: a small hash of the payload.
            let digest = m
                .payload
                .iter()
                .fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b));
            let done = ctx
                .submit(Priority::Normal, move || digest.count_ones())
                .unwrap();
            std::hint::black_box(done.join().unwrap());
            h.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap()
        .id();
    let sender = sys.sender();
    for i in 0..2_000u32 {
        sender
            .send(
                Message::builder(AgentId::nil(), worker)
                    .kind(MessageKind::TaskAssigned)
                    .payload(i.to_le_bytes().to_vec())
                    .build(),
            )
            .unwrap();
    }
    drop(sender);
    let report = sys.shutdown(WAIT);
    assert!(report.drained);
    assert_eq!((report.handled, report.undelivered), (2_000, 0));
    assert_eq!(report.accepted, 2_000);
    assert_eq!(handled.load(Ordering::Relaxed), 2_000);
    let late = sys
        .sender()
        .send(Message::new(AgentId::nil(), worker, "late"));
    assert!(
        late.unwrap_err().is_closed(),
        "sends after shutdown are refused"
    );
}

#[test]
fn the_report_counts_what_was_sent() {
    let sys = system(2);
    let echo = sys
        .spawn_sync(|_: Message, _: &mut SyncContext<'_>| {})
        .unwrap()
        .id();
    let sender = sys.sender();
    for _ in 0..12_345 {
        sender
            .send(Message::new(AgentId::nil(), echo, vec![0u8; 64]))
            .unwrap();
    }
    sender.flush();
    assert!(sys.quiesce(WAIT));
    let r = sys.report();
    assert_eq!(r.messages_handled, 12_345);
    assert_eq!(
        (
            r.messages_sent,
            r.messages_delivered,
            r.messages_undeliverable
        ),
        (12_345, 12_345, 0)
    );
    assert_eq!(r.delivery_success(), 1.0);
    assert!(r.latency_us.p99 >= r.latency_us.p50);
    assert!(r.tasks_completed >= 1, "agent runs are balancer tasks");
    assert!(r.messages_per_sec > 0.0);
    assert_eq!(
        r.pool_hit_ratios.len(),
        4,
        "batch buffers + the three swarm pools"
    );
    assert_eq!(r.pool_hit_ratios[0].0, "message_batches");
    assert!(r.pool_hit_ratios[0].1.is_some(), "batches were pulled");
    assert!(
        r.pool_hit_ratios[1..]
            .iter()
            .all(|(_, ratio)| ratio.is_none()),
        "no agent pulled from the swarm pools: no ratio, not 100%: {:?}",
        r.pool_hit_ratios
    );
    let batches = sys.batch_pool().unwrap().stats();
    assert!(
        batches.hits > 0,
        "batch buffers came back through the pool: {batches:?}"
    );
    let table = r.to_string();
    assert!(table.contains("strings unused"), "{table}");
    if let (Some(peak), Some(now)) = (r.rss_peak_bytes, r.rss_bytes) {
        assert!(peak >= now, "peak {peak} below current {now}");
    }
    assert!(
        table.contains("| Swarm throughput |") && table.contains("Delivery success"),
        "{table}"
    );
}

#[test]
fn agents_whose_runs_find_the_balancer_full_still_handle_everything() {
    // One queue slot per class and one worker: most runs are refused and
    // wait in the backlog for the ticker's next tick.
    let mut balancer = BalancerConfig::default().workers(1, 1);
    for p in Priority::ALL {
        balancer = balancer.queue_capacity(p, 1);
    }
    let sys = SwarmSystem::builder()
        .balancer(balancer)
        .tick_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    let total = Arc::new(AtomicU64::new(0));
    let agents: Vec<AgentId> = (0..32)
        .map(|_| {
            let total = total.clone();
            sys.spawn_sync(move |_: Message, _: &mut SyncContext<'_>| {
                total.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap()
            .id()
        })
        .collect();
    let sender = sys.sender();
    for round in 0..50 {
        for &a in &agents {
            sender
                .send(Message::new(AgentId::nil(), a, vec![round as u8]))
                .unwrap();
        }
    }
    sender.flush();
    assert!(sys.quiesce(WAIT));
    assert_eq!(total.load(Ordering::Relaxed), 32 * 50);
    assert_eq!(sys.shutdown(WAIT).undelivered, 0);
}
