//! hive-cpubalance beside rayon `ThreadPool::spawn`, tokio `spawn` and
//! `spawn_blocking`, 2 workers each, in the same run: no-op task
//! throughput (fire-and-forget and with handles), Critical start latency in
//! a Low flood, Low wait under a High flood, queue memory under overload.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use hive_benches::alloc::{live_bytes, CountingAlloc};
use hive_benches::{record, scale, Extra};
use hive_cpubalance::{Balancer, BalancerConfig};
use hive_types::Priority;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const WORKERS: usize = 2;

fn hive(stats: bool) -> Balancer {
    let config = BalancerConfig::default()
        .workers(WORKERS, WORKERS)
        .scale_interval(None)
        .stats(stats)
        .queue_capacity(Priority::Normal, 1 << 20)
        .queue_capacity(Priority::Low, 1 << 20);
    Balancer::new(config).unwrap()
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .max_blocking_threads(WORKERS)
        .build()
        .unwrap()
}

/// Spins until `left` reaches zero.
fn wait_zero(left: &AtomicUsize) {
    while left.load(Ordering::Acquire) != 0 {
        std::hint::spin_loop();
    }
}

/// Runs `iters` no-op tasks through `spawn`, returning the time until all ran.
fn run_noops(iters: u64, spawn: impl Fn(Box<dyn FnOnce() + Send>)) -> Duration {
    let left = Arc::new(AtomicUsize::new(iters as usize));
    let start = Instant::now();
    for _ in 0..iters {
        let left = left.clone();
        spawn(Box::new(move || {
            left.fetch_sub(1, Ordering::Release);
        }));
    }
    wait_zero(&left);
    start.elapsed()
}

/// rayon's `spawn` of no-op tasks: the anchor of both no-op groups (rayon
/// has no join handles).
fn rayon_noops(group: &mut BenchmarkGroup<'_, WallTime>) {
    let pool = rayon_pool();
    group.bench_function("rayon_spawn", |bench| {
        bench.iter_custom(|iters| run_noops(iters, |f| pool.spawn(f)))
    });
}

/// Each executor lives only while its own case runs: idle pool threads
/// (rayon's spin before they sleep) would otherwise steal the 2 cores from
/// the case being measured.
fn noop_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpubalance.noop_spawn");
    group.throughput(Throughput::Elements(1));
    for (name, stats) in [("hive", true), ("hive_stats_off", false)] {
        let b = hive(stats);
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| run_noops(iters, |f| b.spawn(Priority::Normal, f).unwrap()))
        });
    }
    rayon_noops(&mut group);
    {
        let rt = tokio_rt();
        group.bench_function("tokio_spawn", |bench| {
            bench.iter_custom(|iters| {
                run_noops(iters, |f| {
                    rt.spawn(async move { f() });
                })
            })
        });
    }
    {
        let rt = tokio_rt();
        group.bench_function("tokio_spawn_blocking", |bench| {
            bench.iter_custom(|iters| {
                run_noops(iters, |f| {
                    rt.spawn_blocking(f);
                })
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cpubalance.noop_handles");
    group.throughput(Throughput::Elements(1));
    {
        let b = hive(true);
        group.bench_function("hive", |bench| {
            bench.iter_custom(|iters| {
                let start = Instant::now();
                let handles: Vec<_> = (0..iters)
                    .map(|i| b.submit(Priority::Normal, move || i).unwrap())
                    .collect();
                for h in handles {
                    std::hint::black_box(h.join().unwrap());
                }
                start.elapsed()
            })
        });
    }
    rayon_noops(&mut group);
    {
        let rt = tokio_rt();
        group.bench_function("tokio_spawn", |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let handles: Vec<_> =
                        (0..iters).map(|i| tokio::spawn(async move { i })).collect();
                    for h in handles {
                        std::hint::black_box(h.await.unwrap());
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn busy(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `flood` 10 us Low tasks with `probes` Critical probes spread among them;
/// returns each probe's submit-to-start time in microseconds.
fn probe_latency(
    probes: usize,
    flood: usize,
    spawn: &dyn Fn(Priority, Box<dyn FnOnce() + Send>),
) -> Vec<f64> {
    let starts = Arc::new(Mutex::new(Vec::with_capacity(probes)));
    let every = (flood / probes).max(1);
    let left = Arc::new(AtomicUsize::new(flood + flood.div_ceil(every)));
    for i in 0..flood {
        let l = left.clone();
        spawn(
            Priority::Low,
            Box::new(move || {
                busy(Duration::from_micros(10));
                l.fetch_sub(1, Ordering::Release);
            }),
        );
        if i % every == 0 {
            let (starts, l) = (starts.clone(), left.clone());
            let submitted = Instant::now();
            spawn(
                Priority::Critical,
                Box::new(move || {
                    starts
                        .lock()
                        .unwrap()
                        .push(submitted.elapsed().as_secs_f64() * 1e6);
                    l.fetch_sub(1, Ordering::Release);
                }),
            );
        }
    }
    wait_zero(&left);
    let v = std::mem::take(&mut *starts.lock().unwrap());
    v
}

/// The median over `rounds` of the p99 critical start latency, and the
/// last round's latencies. Each executor lives only for its own rounds.
fn critical_p99(rounds: usize, mut one_round: impl FnMut() -> Vec<f64>) -> (f64, Vec<f64>) {
    let mut p99s = Vec::with_capacity(rounds);
    let mut last = Vec::new();
    for _ in 0..rounds {
        last = one_round();
        p99s.push(percentile(&mut last, 0.99));
    }
    (percentile(&mut p99s, 0.5), last)
}

fn critical_latency(_: &mut Criterion) {
    let (probes, flood, rounds) = (200, scale(20_000, 4_000), scale(3, 1));
    let (h99, mut hive_lat) = {
        let b = hive(true);
        critical_p99(rounds, || {
            probe_latency(probes, flood, &|p, f| b.spawn(p, f).unwrap())
        })
    };
    let (r99, _) = {
        let pool = rayon_pool();
        critical_p99(rounds, || {
            probe_latency(probes, flood, &|_, f| pool.spawn(f))
        })
    };
    let (t99, _) = {
        let rt = tokio_rt();
        critical_p99(rounds, || {
            probe_latency(probes, flood, &|_, f| {
                rt.spawn(async move { f() });
            })
        })
    };
    println!(
        "critical start latency in a flood of {flood} low 10 us tasks: hive p50 {:.1} us p99 {h99:.1} us; rayon p99 {r99:.0} us; tokio p99 {t99:.0} us",
        percentile(&mut hive_lat, 0.5)
    );
    for (anchor, value) in [("rayon_spawn", r99), ("tokio_spawn", t99)] {
        record(&Extra {
            component: "hive-cpubalance",
            case: "critical start latency p99 in a low flood",
            unit: "us",
            higher_is_better: false,
            hive: h99,
            anchor,
            anchor_value: value,
            goal: 0.01,
        });
    }
    record(&Extra {
        component: "hive-cpubalance",
        case: "critical start latency p99 (absolute)",
        unit: "us",
        higher_is_better: false,
        hive: h99,
        anchor: "goal: 1 ms",
        anchor_value: 1000.0,
        goal: 1.0,
    });
}

/// Low probes submitted into a continuous High flood of 10 us tasks.
fn low_wait(_: &mut Criterion) {
    let config = BalancerConfig::default()
        .workers(WORKERS, WORKERS)
        .scale_interval(None);
    let aging = config.aging_threshold;
    let b = Arc::new(Balancer::new(config).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (b, stop) = (b.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = b.try_spawn(Priority::High, || busy(Duration::from_micros(10)));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut waits = Vec::new();
    for _ in 0..scale(50, 10) {
        let submitted = Instant::now();
        let h = b
            .submit(Priority::Low, move || submitted.elapsed())
            .unwrap();
        waits.push(h.join().unwrap().as_secs_f64() * 1e6);
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let p99 = percentile(&mut waits, 0.99);
    let bound = aging.as_secs_f64() * 1e6 + 10.0;
    println!("low task wait under a high flood: p99 {p99:.0} us (aging {aging:?} + one 10 us task = {bound:.0} us)");
    record(&Extra {
        component: "hive-cpubalance",
        case: "low wait p99 under a high flood",
        unit: "us",
        higher_is_better: false,
        hive: p99,
        anchor: "goal: aging + one task",
        anchor_value: bound,
        goal: 1.0,
    });
}

fn heap_bytes() -> f64 {
    live_bytes() as f64
}

/// Submits 10x a class's capacity while the workers are busy: hive refuses
/// what does not fit, rayon queues everything.
fn overload_memory(_: &mut Criterion) {
    let capacity = 10_000;
    let offered = 10 * capacity;
    let config = BalancerConfig::default()
        .workers(WORKERS, WORKERS)
        .scale_interval(None)
        .queue_capacity(Priority::Normal, capacity);
    let b = Balancer::new(config).unwrap();
    let payload = || {
        let data = vec![1u8; 256];
        move || {
            busy(Duration::from_micros(50));
            std::hint::black_box(&data);
        }
    };
    let before = heap_bytes();
    let mut accepted = 0;
    let mut peak = before;
    for _ in 0..offered {
        if b.try_spawn(Priority::Normal, payload()).is_ok() {
            accepted += 1;
        }
        peak = peak.max(heap_bytes());
    }
    let hive_growth = peak - before;
    b.shutdown_now().unwrap();
    drop(b);
    let pool = rayon_pool();
    let before = heap_bytes();
    let mut peak = before;
    for _ in 0..offered {
        pool.spawn(payload());
        peak = peak.max(heap_bytes());
    }
    let rayon_growth = peak - before;
    pool.install(|| ()); // let the queue drain before the pool goes
    println!(
        "queue heap memory offered {offered} tasks (capacity {capacity}): hive accepted {accepted}, peak +{:.1} MB; rayon peak +{:.1} MB",
        hive_growth / 1e6,
        rayon_growth / 1e6
    );
    record(&Extra {
        component: "hive-cpubalance",
        case: "memory growth under 10x overload",
        unit: "MB",
        higher_is_better: false,
        hive: hive_growth.max(0.0) / 1e6,
        anchor: "rayon_spawn",
        anchor_value: rayon_growth.max(1.0) / 1e6,
        goal: 0.2,
    });
    drop(pool);
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = noop_throughput, critical_latency, low_wait, overload_memory
}
criterion_main!(benches);
