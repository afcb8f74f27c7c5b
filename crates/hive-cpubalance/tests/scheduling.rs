//! Exactly-once execution, results, priorities, aging, backpressure.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hive_cpubalance::{Balancer, BalancerConfig};
use hive_types::{HiveError, Priority};

fn config(workers: usize) -> BalancerConfig {
    BalancerConfig::default()
        .workers(workers, workers)
        .scale_interval(None)
}

/// Occupies every worker until the returned sender is dropped.
fn block_workers(
    b: &Balancer,
    n: usize,
) -> (mpsc::Sender<()>, Vec<hive_cpubalance::TaskHandle<()>>) {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let started = Arc::new(AtomicUsize::new(0));
    let handles = (0..n)
        .map(|_| {
            let (rx, started) = (rx.clone(), started.clone());
            b.submit(Priority::Critical, move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = rx.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    while started.load(Ordering::SeqCst) < n {
        std::thread::yield_now();
    }
    (tx, handles)
}

#[test]
fn every_accepted_task_runs_exactly_once() {
    const TASKS: usize = 100_000;
    let balancer = Arc::new(Balancer::new(config(2)).unwrap());
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let submitters: Vec<_> = (0..8)
        .map(|t| {
            let (balancer, runs) = (balancer.clone(), runs.clone());
            std::thread::spawn(move || {
                for i in (t..TASKS).step_by(8) {
                    let runs = runs.clone();
                    let p = Priority::ALL[i % 4];
                    balancer
                        .spawn(p, move || {
                            runs[i].fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    balancer.shutdown().unwrap();
    let ran_twice = runs
        .iter()
        .filter(|r| r.load(Ordering::Relaxed) > 1)
        .count();
    let never = runs
        .iter()
        .filter(|r| r.load(Ordering::Relaxed) == 0)
        .count();
    assert_eq!((ran_twice, never), (0, 0));
    let stats = balancer.stats();
    assert_eq!(stats.completed(), TASKS as u64);
    assert_eq!(
        stats.classes.iter().map(|c| c.submitted).sum::<u64>(),
        TASKS as u64
    );
}

#[test]
fn handles_carry_results() {
    let balancer = Balancer::new(config(2)).unwrap();
    let handles: Vec<_> = (0..100u64)
        .map(|i| balancer.submit(Priority::Normal, move || i * i).unwrap())
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (0..100u64).map(|i| i * i).sum());
}

#[test]
fn critical_starts_before_queued_low() {
    let balancer = Balancer::new(config(1)).unwrap();
    let (release, _blockers) = block_workers(&balancer, 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..50 {
        let order = order.clone();
        handles.push(
            balancer
                .submit(Priority::Low, move || order.lock().unwrap().push(i))
                .unwrap(),
        );
    }
    let o = order.clone();
    handles.push(
        balancer
            .submit(Priority::Critical, move || o.lock().unwrap().push(999))
            .unwrap(),
    );
    drop(release);
    for h in handles {
        h.join().unwrap();
    }
    let order = order.lock().unwrap();
    assert_eq!(order[0], 999, "critical ran first: {:?}", &order[..5]);
    assert_eq!(
        &order[1..],
        &(0..50).collect::<Vec<_>>()[..],
        "low kept its order"
    );
}

#[test]
fn a_low_task_past_the_aging_threshold_overtakes_a_long_high_queue() {
    // Weights alone would run all 300 High tasks before the Low one.
    let mut cfg = config(1).aging_threshold(Duration::from_millis(20));
    cfg.weights = [1000, 1, 1];
    let balancer = Balancer::new(cfg).unwrap();
    let (release, _blocked) = block_workers(&balancer, 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..300u32 {
        let order = order.clone();
        balancer
            .spawn(Priority::High, move || order.lock().unwrap().push(i))
            .unwrap();
    }
    let o = order.clone();
    let low = balancer
        .submit(Priority::Low, move || o.lock().unwrap().push(u32::MAX))
        .unwrap();
    std::thread::sleep(Duration::from_millis(40)); // it waits past the threshold
    drop(release);
    low.join().unwrap();
    let at = order
        .lock()
        .unwrap()
        .iter()
        .position(|&x| x == u32::MAX)
        .unwrap();
    assert!(at <= 1, "the aged Low task ran {at}th of 301");
}

#[test]
fn try_submit_on_a_full_class_gives_the_closure_back() {
    let balancer = Balancer::new(config(1).queue_capacity(Priority::Low, 2)).unwrap();
    let (release, _b) = block_workers(&balancer, 1);
    let first = balancer.try_submit(Priority::Low, || 1).unwrap();
    let second = balancer.try_submit(Priority::Low, || 2).unwrap();
    let refused = balancer.try_submit(Priority::Low, || 3).unwrap_err();
    assert!(refused.is_full(), "{refused}");
    assert_eq!((refused.into_inner())(), 3, "the closure came back intact");
    // Other classes have their own room.
    let urgent = balancer.try_submit(Priority::Critical, || 4).unwrap();
    assert_eq!(balancer.queued(), 3);
    let timed_out = balancer.submit_timeout(Priority::Low, || 5, Duration::from_millis(10));
    assert!(matches!(
        timed_out.unwrap_err().error(),
        HiveError::Timeout { .. }
    ));
    drop(release);
    assert_eq!(
        urgent.join().unwrap() + first.join().unwrap() + second.join().unwrap(),
        7
    );
    assert_eq!(balancer.stats().class(Priority::Low).unwrap().rejected, 2);
}

#[test]
fn queues_never_exceed_their_capacity() {
    let cap = 64;
    let balancer =
        Arc::new(Balancer::new(config(1).queue_capacity(Priority::Normal, cap)).unwrap());
    let producer = {
        let balancer = balancer.clone();
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                balancer
                    .spawn(Priority::Normal, || std::hint::black_box(()))
                    .unwrap();
            }
        })
    };
    let mut peak = 0;
    while !producer.is_finished() {
        peak = peak.max(balancer.queued());
    }
    producer.join().unwrap();
    assert!(peak <= cap, "queued {peak} > capacity {cap}");
    balancer.shutdown().unwrap();
    assert_eq!(balancer.stats().completed(), 20_000);
}

#[test]
fn awaiting_a_handle_from_tokio() {
    let balancer = Balancer::new(config(2)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let value = rt.block_on(async {
        let h = balancer.submit(Priority::High, || {
            std::thread::sleep(Duration::from_millis(20));
            "from a worker"
        });
        h.unwrap().await
    });
    assert_eq!(value.unwrap(), "from a worker");
}

#[test]
fn the_balancer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Balancer>();
}

#[test]
fn with_priorities_off_every_task_runs_as_normal() {
    let mut cfg = config(1);
    cfg.priorities = false;
    let balancer = Balancer::new(cfg).unwrap();
    let critical = balancer.submit(Priority::Critical, || 1).unwrap();
    let low = balancer.submit(Priority::Low, || 2).unwrap();
    assert_eq!(critical.join().unwrap() + low.join().unwrap(), 3);
    let stats = balancer.stats();
    assert_eq!(stats.class(Priority::Normal).unwrap().submitted, 2);
    assert_eq!(stats.class(Priority::Critical).unwrap().submitted, 0);
    assert_eq!(stats.class(Priority::Low).unwrap().submitted, 0);
}

#[test]
fn with_load_awareness_off_tasks_are_placed_round_robin() {
    let mut cfg = config(2);
    cfg.load_aware = false;
    let balancer = Balancer::new(cfg).unwrap();
    // Both workers busy, so nothing is taken or stolen while we look.
    let (release, blockers) = block_workers(&balancer, 2);
    let handles: Vec<_> = (0..10)
        .map(|i| balancer.submit(Priority::Normal, move || i).unwrap())
        .collect();
    let depths: Vec<usize> = balancer
        .stats()
        .workers
        .iter()
        .map(|w| w.queue_depth)
        .collect();
    assert_eq!(depths, vec![5, 5]);
    drop(release);
    for b in blockers {
        b.join().unwrap();
    }
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 45);
}
