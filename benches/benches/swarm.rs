//! The end-to-end swarm run: the reference workload (a coordinator, worker
//! agents, mixed priorities, corpus payloads) through hive-core with every
//! optimization on, then with each turned off in turn; plus a two-process
//! segment over TCP for what compression saves. Writes the ablation table
//! and the run's memory samples to `target/hive-bench/swarm.json`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use hive_benches::alloc::{allocations, CountingAlloc};
use hive_benches::{corpus, record, scale, Extra};
use hive_core::workload::{SwarmWorkload, WorkloadOutcome};
use hive_core::{Optimizations, SwarmSystem};
use serde_json::json;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn workload(tasks: u64) -> SwarmWorkload {
    let payloads: Vec<Bytes> = corpus::messages(7, 256)
        .into_iter()
        .map(|m| m.payload)
        .collect();
    SwarmWorkload {
        tasks,
        payloads,
        ..SwarmWorkload::default()
    }
}

fn run(optimizations: Optimizations, tasks: u64) -> WorkloadOutcome {
    let system = SwarmSystem::builder()
        .optimizations(optimizations)
        .allocation_counter(allocations)
        .build()
        .unwrap();
    let outcome = workload(tasks).run(&system).unwrap();
    let shutdown = system.shutdown(Duration::from_secs(30));
    assert_eq!(shutdown.undelivered, 0, "every message delivered");
    outcome
}

/// The workload with its workers in a second system behind a TCP link;
/// returns the outcome and the raw and wire bytes both links wrote.
fn over_tcp(optimizations: Optimizations, tasks: u64) -> (WorkloadOutcome, u64, u64) {
    use hive_core::messaging::tcp::{TcpConfig, TcpLink, TcpServer};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let build = || {
        SwarmSystem::builder()
            .optimizations(optimizations)
            .build()
            .unwrap()
    };
    let (here, there) = (build(), build());
    let config = TcpConfig {
        encoder: optimizations.encoder_config(),
        ..TcpConfig::default()
    };
    let server = rt
        .block_on(TcpServer::bind(
            there.communicator(),
            "127.0.0.1:0",
            config.clone(),
        ))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(
            here.communicator(),
            server.local_addr(),
            config,
        ))
        .unwrap();
    let comm = here.communicator().clone();
    let outcome = workload(tasks)
        .run_split(&here, &there, |w| comm.agents().contains(&w))
        .unwrap();
    let mine = rt.block_on(link.close());
    let theirs = rt.block_on(server.shutdown());
    let raw = mine.raw_bytes + theirs.iter().map(|r| r.raw_bytes).sum::<u64>();
    let wire = mine.wire_bytes + theirs.iter().map(|r| r.wire_bytes).sum::<u64>();
    here.shutdown(Duration::from_secs(10));
    there.shutdown(Duration::from_secs(10));
    (outcome, raw, wire)
}

fn tasks_per_sec(o: &WorkloadOutcome) -> f64 {
    o.tasks_done as f64 / o.elapsed.as_secs_f64().max(1e-9)
}

fn row(name: &str, o: &WorkloadOutcome) -> serde_json::Value {
    let r = &o.report;
    json!({
        "configuration": name,
        "messages_per_sec": o.messages_per_sec(),
        "tasks_per_sec": tasks_per_sec(o),
        "latency_p50_us": r.latency_us.p50,
        "latency_p95_us": r.latency_us.p95,
        "latency_p99_us": r.latency_us.p99,
        "latency_p999_us": r.latency_us.p999,
        "rss_mb": r.rss_bytes.map(|b| b as f64 / 1e6),
        "rss_peak_mb": r.rss_peak_bytes.map(|b| b as f64 / 1e6),
        "cpu_s_per_million": r.cpu_seconds_per_million,
        "allocations_per_message": r.allocations_per_message,
        "worker_busy": r.worker_busy,
        "delivery_success": r.delivery_success(),
    })
}

fn swarm(_: &mut Criterion) {
    let tasks = scale(1_000_000, 100_000) as u64;
    let all = Optimizations::default();
    let variants = [
        ("all on", all),
        (
            "batching off",
            Optimizations {
                batching: false,
                ..all
            },
        ),
        (
            "pools off",
            Optimizations {
                pools: false,
                ..all
            },
        ),
        (
            "load-aware placement and priorities off",
            Optimizations {
                load_aware: false,
                ..all
            },
        ),
    ];
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for (name, opt) in variants {
        let o = run(opt, tasks);
        println!(
            "swarm [{name}]: {:.0} msg/s, p99 {:.0} us, rss {:.1} MB, {:.3} CPU s/M msg, {:.3} allocs/msg",
            o.messages_per_sec(),
            o.report.latency_us.p99,
            o.report.rss_bytes.unwrap_or(0) as f64 / 1e6,
            o.report.cpu_seconds_per_million.unwrap_or(0.0),
            o.report.allocations_per_message.unwrap_or(0.0)
        );
        rows.push(row(name, &o));
        outcomes.push(o);
    }
    let on = &outcomes[0];
    let get = |i: usize| &outcomes[i];
    let rate = |o: &WorkloadOutcome| o.messages_per_sec();
    let extras = [
        (
            "end-to-end swarm throughput",
            "msg/s",
            true,
            rate(on),
            "goal: 1,000,000 msg/s",
            1e6,
            1.0,
        ),
        (
            "P99 message latency under saturation",
            "us",
            false,
            on.report.latency_us.p99,
            "goal: linger + 1 ms",
            11_000.0,
            1.0,
        ),
        (
            "resident memory, steady state",
            "MB",
            false,
            on.report.rss_bytes.unwrap_or(0) as f64 / 1e6,
            "goal: 20 MB",
            20.0,
            1.0,
        ),
        (
            "end-to-end task throughput",
            "tasks/s",
            true,
            tasks_per_sec(on),
            "document's claim: 877 ops/s",
            877.0,
            f64::NAN,
        ),
        (
            "delivery success",
            "%",
            true,
            on.report.delivery_success() * 100.0,
            "goal: 100%",
            100.0,
            1.0,
        ),
        (
            "throughput with batching (document: +47%)",
            "msg/s",
            true,
            rate(on),
            "batching off",
            rate(get(1)),
            1.47,
        ),
        (
            "allocations per message with pools (document: -70%)",
            "allocs/msg",
            false,
            on.report.allocations_per_message.unwrap_or(0.0),
            "pools off",
            get(2).report.allocations_per_message.unwrap_or(0.0),
            0.3,
        ),
        (
            "resident memory with pools (document: -30%)",
            "MB",
            false,
            on.report.rss_bytes.unwrap_or(0) as f64 / 1e6,
            "pools off",
            get(2).report.rss_bytes.unwrap_or(0) as f64 / 1e6,
            0.7,
        ),
        (
            "CPU per million messages with load-aware balancing (document: -31%)",
            "CPU s",
            false,
            on.report.cpu_seconds_per_million.unwrap_or(0.0),
            "load-aware placement and priorities off",
            get(3).report.cpu_seconds_per_million.unwrap_or(0.0),
            0.69,
        ),
    ];
    for (case, unit, higher, hive, anchor, anchor_value, goal) in extras {
        record(&Extra {
            component: "hive-core",
            case,
            unit,
            higher_is_better: higher,
            hive,
            anchor,
            anchor_value,
            goal,
        });
    }

    // Compression: the same workload with the workers in a second system
    // behind a TCP link, compression on and off.
    for (name, compression) in [
        ("over TCP, compression on", true),
        ("over TCP, compression off", false),
    ] {
        let (o, raw, wire) = over_tcp(
            Optimizations { compression, ..all },
            scale(200_000, 20_000) as u64,
        );
        println!(
            "swarm [{name}]: {:.0} msg/s, {raw} raw bytes -> {wire} wire bytes",
            o.messages_per_sec()
        );
        let mut r = row(name, &o);
        r["raw_bytes"] = json!(raw);
        r["wire_bytes"] = json!(wire);
        r["bandwidth_saved"] = json!(1.0 - wire as f64 / raw.max(1) as f64);
        rows.push(r);
        if compression {
            record(&Extra {
                component: "hive-core",
                case: "bandwidth saved by compression over TCP (document: 30-50%)",
                unit: "% saved",
                higher_is_better: true,
                hive: (1.0 - wire as f64 / raw.max(1) as f64) * 100.0,
                anchor: "goal: 30%",
                anchor_value: 30.0,
                goal: 1.0,
            });
        }
    }

    // Memory growth over a long run (10 M messages in the full run).
    let long = run(all, scale(5_000_000, 500_000) as u64);
    let growth = long.report.rss_growth_bytes.unwrap_or(0) as f64 / 1e6;
    let samples = long.report.rss_samples.clone();
    let settled = samples.get(samples.len() / 5).map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let drift = (last as f64 - settled as f64) / 1e6;
    println!("swarm long run: {} messages, rss growth {growth:.1} MB since start, {drift:+.2} MB after warm-up", long.messages);
    record(&Extra {
        component: "hive-core",
        case: "resident memory growth after warm-up over the long run",
        unit: "MB",
        higher_is_better: false,
        hive: drift,
        anchor: "goal: under 1 MB",
        anchor_value: 1.0,
        goal: 1.0,
    });

    let out = json!({
        "tasks": tasks,
        "ablation": rows,
        "long_run": {
            "messages": long.messages,
            "rss_growth_mb": growth,
            "rss_drift_after_warmup_mb": drift,
            "rss_samples": samples,
        },
        "report_table": on.report.to_string(),
    });
    let path = hive_benches::extra_path().with_file_name("swarm.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = swarm
}
criterion_main!(benches);
