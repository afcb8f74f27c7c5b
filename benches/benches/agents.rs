//! hive-core's agent runtime beside kameo, ractor and actix, in the same
//! run: tell 1 -> 1 and 8 -> 1 (messages per second), ask round trip (p50,
//! p99), spawning 10,000 agents with one message each (time, live bytes per
//! agent), and 1,000 I/O-bound agents x 10 messages of a 20 ms call each
//! (wall time against the ideal 0.2 s).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)] // bench harness code

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hive_benches::actors::{actix, hive, kameo, ractor};
use hive_benches::alloc::{live_bytes, CountingAlloc};
use hive_benches::{median, record, scale, Extra};
use hive_core::SwarmSystem;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const CORE: &str = "hive-core";

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(num_cpus::get().max(1))
        .enable_all()
        .build()
        .unwrap()
}

fn hive_system() -> SwarmSystem {
    SwarmSystem::builder().build().unwrap()
}

/// Runs `case` as a task of `rt` (callers are tasks, as in real use).
fn on<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    case: impl Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async move { tokio::spawn(case).await.unwrap() })
}

fn tell(c: &mut Criterion) {
    let rt = tokio_runtime();
    let system = hive_system();
    let hive_rt = system.runtime().clone();
    for producers in [1u64, 8] {
        let mut group = c.benchmark_group(format!("agents.tell_{producers}to1"));
        group.throughput(Throughput::Elements(1));
        let n = move |iters: u64| iters.max(producers);
        group.bench_function("hive", |b| {
            b.iter_custom(|iters| {
                let s = system.clone();
                on(&hive_rt, async move {
                    hive::tell(&s, n(iters), producers, false).await
                })
            })
        });
        group.bench_function("hive_sync", |b| {
            b.iter_custom(|iters| {
                let s = system.clone();
                on(&hive_rt, async move {
                    hive::tell(&s, n(iters), producers, true).await
                })
            })
        });
        group.bench_function("kameo", |b| {
            b.iter_custom(|iters| {
                on(rt.handle(), async move {
                    if producers == 1 {
                        kameo::tell_1_to_1(n(iters)).await
                    } else {
                        kameo::tell_m_to_1(n(iters), producers).await
                    }
                })
            })
        });
        group.bench_function("ractor", |b| {
            b.iter_custom(|iters| {
                on(rt.handle(), async move {
                    if producers == 1 {
                        ractor::tell_1_to_1(n(iters)).await
                    } else {
                        ractor::tell_m_to_1(n(iters), producers).await
                    }
                })
            })
        });
        group.bench_function("actix", |b| {
            b.iter_custom(|iters| {
                if producers == 1 {
                    actix::tell_1_to_1(n(iters))
                } else {
                    actix::tell_m_to_1(n(iters), producers)
                }
            })
        });
        group.finish();
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn ask(c: &mut Criterion) {
    let rt = tokio_runtime();
    let system = hive_system();
    let hive_rt = system.runtime().clone();
    let mut group = c.benchmark_group("agents.ask");
    let total = |lat: Vec<u64>| Duration::from_nanos(lat.iter().sum());
    group.bench_function("hive", |b| {
        b.iter_custom(|iters| {
            let s = system.clone();
            total(on(&hive_rt, async move { hive::ask(&s, iters).await }))
        })
    });
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| total(on(rt.handle(), kameo::ask_round_trip(iters))))
    });
    group.bench_function("ractor", |b| {
        b.iter_custom(|iters| total(on(rt.handle(), ractor::ask_round_trip(iters))))
    });
    group.bench_function("actix", |b| {
        b.iter_custom(|iters| total(actix::ask_round_trip(iters)))
    });
    group.finish();

    // Percentiles from rounds of sequential asks, the median of each.
    let k = scale(20_000, 3_000) as u64;
    let rounds = scale(5, 2);
    let mut figures: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
    for name in ["hive", "kameo", "ractor", "actix"] {
        let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let mut lat = match name {
                "hive" => {
                    let s = system.clone();
                    on(&hive_rt, async move { hive::ask(&s, k).await })
                }
                "kameo" => on(rt.handle(), kameo::ask_round_trip(k)),
                "ractor" => on(rt.handle(), ractor::ask_round_trip(k)),
                _ => actix::ask_round_trip(k),
            };
            lat.sort_unstable();
            p50s.push(percentile(&lat, 0.5));
            p99s.push(percentile(&lat, 0.99));
        }
        figures.push((name, p50s, p99s));
    }
    let mut meds: Vec<(&str, f64, f64)> = figures
        .into_iter()
        .map(|(n, mut a, mut b)| (n, median(&mut a), median(&mut b)))
        .collect();
    for (name, p50, p99) in &meds {
        println!("ask round trip {name}: p50 {p50:.2} us, p99 {p99:.2} us");
    }
    let (_, hive_p50, hive_p99) = meds.remove(0);
    for (name, p50, p99) in &meds {
        record(&Extra {
            component: CORE,
            case: "ask round trip p50",
            unit: "us",
            higher_is_better: false,
            hive: hive_p50,
            anchor: name,
            anchor_value: *p50,
            goal: 1.0,
        });
        record(&Extra {
            component: CORE,
            case: "ask round trip p99",
            unit: "us",
            higher_is_better: false,
            hive: hive_p99,
            anchor: name,
            anchor_value: *p99,
            goal: f64::NAN,
        });
    }
    record(&Extra {
        component: CORE,
        case: "ask round trip p99",
        unit: "us",
        higher_is_better: false,
        hive: hive_p99,
        anchor: "goal: 10 us",
        anchor_value: 10.0,
        goal: 1.0,
    });
}

fn spawn(c: &mut Criterion) {
    let n = scale(10_000, 2_000);
    let rt = tokio_runtime();
    let system = hive_system();
    let hive_rt = system.runtime().clone();
    let mut group = c.benchmark_group("agents.spawn_10k");
    group.sample_size(10);
    let repeat = |iters: u64, mut once: Box<dyn FnMut() -> Duration + '_>| {
        (0..iters).map(|_| once()).sum::<Duration>()
    };
    group.bench_function("hive", |b| {
        b.iter_custom(|iters| {
            repeat(
                iters,
                Box::new(|| {
                    let s = system.clone();
                    on(&hive_rt, async move { hive::spawn_n(&s, n).await.0 })
                }),
            )
        })
    });
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| repeat(iters, Box::new(|| on(rt.handle(), kameo::spawn_n(n)).0)))
    });
    group.bench_function("ractor", |b| {
        b.iter_custom(|iters| repeat(iters, Box::new(|| on(rt.handle(), ractor::spawn_n(n)).0)))
    });
    group.bench_function("actix", |b| {
        b.iter_custom(|iters| repeat(iters, Box::new(|| actix::spawn_n(n).0)))
    });
    group.finish();

    // Live heap bytes per agent, median of a few rounds.
    let rounds = scale(5, 2);
    let bytes = |f: &dyn Fn() -> f64| {
        let mut v: Vec<f64> = (0..rounds).map(|_| f()).collect();
        median(&mut v)
    };
    let hive_bytes = bytes(&|| {
        let s = system.clone();
        on(&hive_rt, async move { hive::spawn_n(&s, n).await.1 })
    });
    let others = [
        ("kameo", bytes(&|| on(rt.handle(), kameo::spawn_n(n)).1)),
        ("ractor", bytes(&|| on(rt.handle(), ractor::spawn_n(n)).1)),
        ("actix", bytes(&|| actix::spawn_n(n).1)),
    ];
    println!("live bytes per agent: hive {hive_bytes:.0}, {others:?}");
    for (name, value) in others {
        record(&Extra {
            component: CORE,
            case: "live heap bytes per idle agent",
            unit: "bytes",
            higher_is_better: false,
            hive: hive_bytes,
            anchor: name,
            anchor_value: value,
            goal: f64::NAN,
        });
    }
    record(&Extra {
        component: CORE,
        case: "live heap bytes per idle agent",
        unit: "bytes",
        higher_is_better: false,
        hive: hive_bytes,
        anchor: "goal: 1.5 KB",
        anchor_value: 1_500.0,
        goal: 1.0,
    });
}

fn io_bound(c: &mut Criterion) {
    let agents = scale(1_000, 200);
    let per = 10;
    let rt = tokio_runtime();
    let system = hive_system();
    let hive_rt = system.runtime().clone();
    let mut group = c.benchmark_group("agents.io_bound");
    group.sample_size(10);
    let repeat = |iters: u64, mut once: Box<dyn FnMut() -> Duration + '_>| {
        (0..iters).map(|_| once()).sum::<Duration>()
    };
    group.bench_function("hive", |b| {
        b.iter_custom(|iters| {
            repeat(
                iters,
                Box::new(|| {
                    let s = system.clone();
                    on(
                        &hive_rt,
                        async move { hive::io_bound(&s, agents, per).await },
                    )
                }),
            )
        })
    });
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| {
            repeat(
                iters,
                Box::new(|| on(rt.handle(), kameo::io_bound(agents, per))),
            )
        })
    });
    group.bench_function("ractor", |b| {
        b.iter_custom(|iters| {
            repeat(
                iters,
                Box::new(|| on(rt.handle(), ractor::io_bound(agents, per))),
            )
        })
    });
    group.bench_function("actix", |b| {
        b.iter_custom(|iters| repeat(iters, Box::new(|| actix::io_bound(agents, per))))
    });
    group.finish();
}

/// Heap the live watch's history takes when full, from the allocator: a
/// system keeping `windows` windows minus one keeping a single window, the
/// second run as long as the first took to fill its history (windows of
/// 1 ms here; the default keeps 3,600 windows of 1 s, an hour).
fn history_memory(_: &mut Criterion) {
    let windows = scale(3_600, 360);
    let held = |keep: usize, run_for: Option<Duration>| -> (f64, usize, Duration) {
        let base = live_bytes() as i64;
        let started = Instant::now();
        let system = SwarmSystem::builder()
            .tick_interval(Duration::from_millis(1))
            .history(Duration::from_millis(1), keep)
            .build()
            .unwrap();
        let done = |s: &SwarmSystem| match run_for {
            Some(d) => started.elapsed() >= d,
            None => s.history().len() >= keep,
        };
        while !done(&system) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = started.elapsed();
        let bytes = (live_bytes() as i64 - base) as f64;
        let kept = system.history().len();
        system.shutdown(Duration::from_secs(5));
        (bytes, kept, took)
    };
    held(1, Some(Duration::from_millis(100))); // the global recorder, first uses
    let (full, kept, took) = held(windows, None);
    let (one, _, _) = held(1, Some(took));
    let bound = (windows * std::mem::size_of::<hive_core::Window>()) as f64;
    println!(
        "window history: {kept} windows hold {:.0} B (bound {bound:.0} B)",
        full - one
    );
    record(&Extra {
        component: CORE,
        case: "heap of a full window history (full run: 3,600 windows)",
        unit: "bytes",
        higher_is_better: false,
        hive: full - one,
        anchor: "bound: windows x their size",
        anchor_value: bound,
        goal: f64::NAN, // reported: the figure is the allocator's, the bound the design's
    });
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = tell, ask, spawn, io_bound, history_memory
}
criterion_main!(benches);
