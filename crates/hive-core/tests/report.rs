//! The report's figures are measurements: no latency before any message
//! was timed, no CPU per message before any message, and per-worker CPU
//! that cannot add up to more cores than the machine has.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hive_core::cpubalance::BalancerConfig;
use hive_core::{Message, Priority, SwarmSystem, SyncContext};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_fresh_report_shows_no_made_up_latency_or_cpu_per_message() {
    let sys = SwarmSystem::builder().build().unwrap();
    let r = sys.report();
    assert_eq!(r.latency_samples, 0);
    assert!(r.cpu_seconds_per_million.is_none(), "no message handled");
    let table = r.to_string();
    assert!(
        table.contains("n/a (no handled message timed yet)"),
        "{table}"
    );

    let agent = sys
        .spawn_sync(|_m: Message, _ctx: &mut SyncContext<'_>| {})
        .unwrap();
    for _ in 0..100 {
        sys.tell(agent.id(), "x").unwrap();
    }
    assert!(sys.quiesce(WAIT));
    let r = sys.report();
    assert!(r.latency_samples > 0, "one in a few handled is timed");
    assert!(r.cpu_seconds_per_million.is_some());
    assert!(!r.to_string().contains("no handled message timed"));
}

#[test]
fn worker_cpu_load_counts_cpu_not_busy_time() {
    if !std::path::Path::new("/proc/thread-self").exists() {
        return; // not Linux: thread CPU time is unknown by design
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    let workers = cores * 4;
    let sys = SwarmSystem::builder()
        .balancer(BalancerConfig::default().workers(workers, workers))
        .build()
        .unwrap();
    // One spinning task per worker: every worker is busy (never parked),
    // but they share `cores` cores.
    let (started, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (started, stop) = (started.clone(), stop.clone());
            sys.balancer()
                .submit(Priority::Normal, move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .map_err(|_| "refused")
                .unwrap()
        })
        .collect();
    while started.load(Ordering::SeqCst) < workers {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = sys.report();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let loads: Vec<f64> = r.worker_cpu.iter().map(|c| c.unwrap()).collect();
    assert_eq!(loads.len(), workers);
    let total: f64 = loads.iter().sum();
    assert!(total > 0.0, "spinning workers used CPU: {loads:?}");
    assert!(
        total <= cores as f64 * 1.1 + 0.1,
        "{workers} workers on {cores} cores cannot use {total:.2} cores: {loads:?}"
    );
}
