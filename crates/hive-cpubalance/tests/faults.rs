//! Panics, shutdown, drop and scaling.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hive_cpubalance::{Balancer, BalancerConfig, ScaleDecision};
use hive_types::{HiveError, Priority};

fn config(min: usize, max: usize) -> BalancerConfig {
    BalancerConfig::default()
        .workers(min, max)
        .scale_interval(None)
}

#[test]
fn panics_are_contained_and_the_pool_lives_on() {
    std::panic::set_hook(Box::new(|_| {})); // 10,000 panic messages are noise here
    let balancer = Balancer::new(config(2, 2)).unwrap();
    let handles: Vec<_> = (0..10_000)
        .map(|i| {
            balancer
                .submit(Priority::Normal, move || -> u32 {
                    panic!("task {i} failed")
                })
                .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Err(HiveError::TaskPanicked { message }) => {
                assert_eq!(message, format!("task {i} failed"))
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
    }
    assert_eq!(
        balancer
            .submit(Priority::Normal, || 7)
            .unwrap()
            .join()
            .unwrap(),
        7
    );
    assert_eq!(balancer.stats().panics, 10_000);
    let _ = std::panic::take_hook();
}

fn blocked(b: &Balancer) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    b.spawn(Priority::Critical, move || {
        s.fetch_add(1, Ordering::SeqCst);
        let _ = rx.recv();
    })
    .unwrap();
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    tx
}

#[test]
fn shutdown_runs_everything_accepted() {
    let balancer = Balancer::new(config(1, 1)).unwrap();
    let release = blocked(&balancer);
    let handles: Vec<_> = (0..200)
        .map(|i| balancer.submit(Priority::Low, move || i).unwrap())
        .collect();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(release);
    });
    balancer.shutdown().unwrap();
    closer.join().unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i);
    }
    let refused = balancer.spawn(Priority::Critical, || ()).unwrap_err();
    assert!(refused.is_closed());
}

#[test]
fn shutdown_now_resolves_every_handle() {
    let balancer = Balancer::new(config(1, 1)).unwrap();
    let release = blocked(&balancer);
    let handles: Vec<_> = (0..200)
        .map(|i| balancer.submit(Priority::Normal, move || i).unwrap())
        .collect();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(release);
    });
    let cancelled = balancer.shutdown_now().unwrap();
    closer.join().unwrap();
    assert_eq!(cancelled, 200);
    for h in handles {
        assert!(matches!(h.join(), Err(HiveError::Cancelled)));
    }
}

#[test]
fn dropping_the_balancer_does_not_hang() {
    let balancer = Balancer::new(config(1, 1)).unwrap();
    let (_keep_blocked, rx) = mpsc::channel::<()>();
    balancer
        .spawn(Priority::Normal, move || {
            let _ = rx.recv_timeout(Duration::from_secs(30));
        })
        .unwrap();
    let queued = balancer.submit(Priority::Normal, || 1).unwrap();
    drop(balancer); // the running task blocks for 30 s; drop returns at once
    assert!(matches!(queued.join(), Err(HiveError::Cancelled)));
}

#[test]
fn scales_up_under_blocking_tasks_and_back_down_when_idle() {
    let mut cfg = config(1, 3);
    cfg.scale_down_after = 2;
    let balancer = Balancer::new(cfg).unwrap();
    assert_eq!(balancer.active_workers(), 1);
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            balancer
                .submit(Priority::Normal, move || {
                    let _ = rx.lock().unwrap().recv();
                })
                .unwrap()
        })
        .collect();
    balancer.rebalance(); // first sample
    for expected in [2, 3] {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            balancer.rebalance(),
            ScaleDecision::Added,
            "blocked tasks wait: add a worker"
        );
        assert_eq!(balancer.active_workers(), expected);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        balancer.rebalance(),
        ScaleDecision::Kept,
        "never above max_workers"
    );
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    let mut retired = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(10));
        if balancer.rebalance() == ScaleDecision::Retired {
            retired += 1;
        }
    }
    assert_eq!(retired, 2);
    assert_eq!(balancer.active_workers(), 1, "never below min_workers");
    let stats = balancer.stats();
    assert_eq!((stats.scale_ups, stats.scale_downs), (2, 2));
}

/// A panic payload that panics again when it is dropped.
struct Nasty;

impl Drop for Nasty {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

#[test]
fn a_panic_payload_that_panics_on_drop_does_not_kill_the_worker() {
    std::panic::set_hook(Box::new(|_| {}));
    let balancer = Balancer::new(config(1, 1)).unwrap();
    let handle = balancer
        .submit(Priority::Normal, || -> u32 { std::panic::panic_any(Nasty) })
        .unwrap();
    let outcome = handle.join_timeout(Duration::from_secs(10));
    assert!(
        matches!(outcome, Ok(Err(HiveError::TaskPanicked { .. }))),
        "the handle resolves"
    );
    balancer
        .spawn(Priority::Normal, || std::panic::panic_any(Nasty))
        .unwrap();
    // The one worker still runs tasks.
    let after = balancer.submit(Priority::Normal, || 7).unwrap();
    assert!(matches!(
        after.join_timeout(Duration::from_secs(10)),
        Ok(Ok(7))
    ));
    assert_eq!(balancer.stats().panics, 2);
    let _ = std::panic::take_hook();
}
