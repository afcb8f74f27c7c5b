//! The end-to-end swarm run: the reference workload (a coordinator, worker
//! agents, mixed priorities, corpus payloads) through hive-core with every
//! optimization on, then with each turned off in turn; plus a two-process
//! segment over TCP for what compression saves; then the workload at fixed
//! offered rates (open loop: 50% and 90% of capacity with load-aware
//! placement on and off for CPU at equal load, 120% for overload latency
//! and memory). Writes the ablation table, the open-loop rows and the run's
//! memory samples to `target/hive-bench/swarm.json`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use hive_benches::alloc::{allocations, CountingAlloc};
use hive_benches::workload::{SwarmWorkload, WorkloadOutcome};
use hive_benches::{corpus, record, scale, Extra};
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
        ..TcpConfig::plaintext()
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
    let raw =
        mine.stats.raw_bytes_sent + theirs.iter().map(|r| r.stats.raw_bytes_sent).sum::<u64>();
    let wire = mine.stats.bytes_sent + theirs.iter().map(|r| r.stats.bytes_sent).sum::<u64>();
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
        "messages": o.messages,
        "messages_per_sec": o.messages_per_sec(),
        "tasks_per_sec": tasks_per_sec(o),
        "latency_p50_us": r.latency_us.p50,
        "latency_p95_us": r.latency_us.p95,
        "latency_p99_us": r.latency_us.p99,
        "latency_p999_us": r.latency_us.p999,
        "rss_mb": r.rss_bytes.map(|b| b as f64 / 1e6),
        "rss_peak_mb": r.rss_peak_bytes.map(|b| b as f64 / 1e6),
        "rss_growth_mb": r.rss_growth_bytes.map(|b| b as f64 / 1e6),
        "rss_samples": r.rss_samples,
        "cpu_s_per_million": r.cpu_seconds_per_million,
        "allocations_per_message": r.allocations_per_message,
        "worker_busy": r.worker_busy,
        "worker_cpu": r.worker_cpu,
        "delivery_success": r.delivery_success(),
        "report_table": r.to_string(),
    })
}

/// The configurations of the ablation table, then the long run.
fn variants() -> Vec<(&'static str, Optimizations, u64)> {
    let all = Optimizations::default();
    let tasks = scale(1_000_000, 100_000) as u64;
    vec![
        ("all on", all, tasks),
        (
            "batching off",
            Optimizations {
                batching: false,
                ..all
            },
            tasks,
        ),
        (
            "pools off",
            Optimizations {
                pools: false,
                ..all
            },
            tasks,
        ),
        (
            "load-aware placement and priorities off",
            Optimizations {
                load_aware: false,
                ..all
            },
            tasks,
        ),
        // Memory growth over a long run (10 M messages in the full run).
        (LONG_RUN, all, scale(5_000_000, 500_000) as u64),
    ]
}

const LONG_RUN: &str = "long run";
const VARIANT_ENV: &str = "HIVE_SWARM_VARIANT";

/// Runs configuration `name` in a fresh process (this bench binary with
/// `HIVE_SWARM_VARIANT` set), so no run inherits another's heap: resident
/// memory is each configuration's own.
fn run_isolated(name: &str) -> serde_json::Value {
    in_child(&[(VARIANT_ENV, name.to_string())], "swarm-row: ")
}

/// Runs this bench binary again with `envs` and returns the JSON row it
/// prints after `prefix`.
fn in_child(envs: &[(&str, String)], prefix: &str) -> serde_json::Value {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--bench")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "swarm child {envs:?} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no result from swarm child {envs:?}: {text}"));
    serde_json::from_str(line).unwrap()
}

/// One of the seed's claims for the report: case, unit, higher is better,
/// hive's figure, anchor, the anchor's figure, goal.
type Claim<'a> = (&'a str, &'a str, bool, f64, &'a str, f64, f64);

fn record_claims(claims: &[Claim<'_>]) {
    for &(case, unit, higher_is_better, hive, anchor, anchor_value, goal) in claims {
        record(&Extra {
            component: "hive-core",
            case,
            unit,
            higher_is_better,
            hive,
            anchor,
            anchor_value,
            goal,
        });
    }
}

/// In the child process: runs the one configuration and prints its row.
fn child(name: &str) {
    let (_, opt, tasks) = variants()
        .into_iter()
        .find(|v| v.0 == name)
        .unwrap_or_else(|| panic!("unknown swarm variant {name}"));
    let o = run(opt, tasks);
    println!("swarm-row: {}", row(name, &o));
}

fn swarm(_: &mut Criterion) {
    if let Ok(rate) = std::env::var(OPEN_RATE_ENV) {
        open_child(&rate);
        std::process::exit(0);
    }
    if let Ok(name) = std::env::var(VARIANT_ENV) {
        child(&name);
        std::process::exit(0);
    }
    let tasks = scale(1_000_000, 100_000) as u64;
    let mut rows = ablation();
    record_ablation(&rows);
    let open = open_loop(num(&rows[0], "tasks_per_sec"));
    let tcp_tasks = scale(200_000, 20_000) as u64;
    rows.extend(compression_over_tcp(tcp_tasks));
    let long_run = long_run();
    let table = rows[0]["report_table"].clone();
    for r in &mut rows {
        if let Some(r) = r.as_object_mut() {
            r.remove("report_table");
            r.remove("rss_samples");
        }
    }
    let out = json!({
        "tasks": tasks,
        "tcp_tasks": tcp_tasks,
        "ablation": rows,
        "open_loop": open,
        "long_run": long_run,
        "report_table": table,
    });
    let path = hive_benches::extra_path().with_file_name("swarm.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
}

/// Every optimization on, then each off in turn, each in its own process.
fn ablation() -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for (name, _, _) in variants().into_iter().filter(|v| v.0 != LONG_RUN) {
        let r = run_isolated(name);
        println!(
            "swarm [{name}]: {:.0} msg/s, p99 {:.0} us, rss {:.1} MB, {:.3} CPU s/M msg, {:.3} allocs/msg",
            num(&r, "messages_per_sec"),
            num(&r, "latency_p99_us"),
            num(&r, "rss_mb"),
            num(&r, "cpu_s_per_million"),
            num(&r, "allocations_per_message"),
        );
        rows.push(r);
    }
    rows
}

/// The seed design's claims, each against its goal or the run with the
/// optimization off.
fn record_ablation(rows: &[serde_json::Value]) {
    // Load-aware placement's CPU claim is measured at equal load: see
    // `open_loop` (a saturated closed loop's CPU per message is about
    // cores / throughput).
    let (on, no_batching, no_pools) = (&rows[0], &rows[1], &rows[2]);
    let extras = [
        (
            "end-to-end swarm throughput",
            "msg/s",
            true,
            num(on, "messages_per_sec"),
            "goal: 1,000,000 msg/s",
            1e6,
            1.0,
        ),
        (
            "P99 message latency under saturation",
            "us",
            false,
            num(on, "latency_p99_us"),
            "goal: linger + 1 ms",
            11_000.0,
            1.0,
        ),
        (
            "resident memory, steady state",
            "MB",
            false,
            num(on, "rss_mb"),
            "goal: 20 MB",
            20.0,
            1.0,
        ),
        (
            "end-to-end task throughput",
            "tasks/s",
            true,
            num(on, "tasks_per_sec"),
            "document's claim: 877 ops/s",
            877.0,
            f64::NAN,
        ),
        (
            "delivery success",
            "%",
            true,
            num(on, "delivery_success") * 100.0,
            "goal: 100%",
            100.0,
            1.0,
        ),
        (
            "throughput with batching (document: +47%)",
            "msg/s",
            true,
            num(on, "messages_per_sec"),
            "batching off",
            num(no_batching, "messages_per_sec"),
            1.47,
        ),
        (
            "allocations per message with pools (document: -70%)",
            "allocs/msg",
            false,
            num(on, "allocations_per_message"),
            "pools off",
            num(no_pools, "allocations_per_message"),
            0.3,
        ),
        (
            "resident memory with pools (document: -30%)",
            "MB",
            false,
            num(on, "rss_mb"),
            "pools off",
            num(no_pools, "rss_mb"),
            0.7,
        ),
    ];
    record_claims(&extras);
}

/// The same workload with the workers in a second system behind a TCP
/// link, compression on and off (in this process: the figures here are
/// bytes and rates, not memory).
fn compression_over_tcp(tasks: u64) -> Vec<serde_json::Value> {
    let all = Optimizations::default();
    let mut rows = Vec::new();
    for (name, compression) in [
        ("over TCP, compression on", true),
        ("over TCP, compression off", false),
    ] {
        let (o, raw, wire) = over_tcp(Optimizations { compression, ..all }, tasks);
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
    rows
}

/// The long run in its own process: resident memory after warm-up.
fn long_run() -> serde_json::Value {
    let long = run_isolated(LONG_RUN);
    let samples: Vec<(f64, u64)> = serde_json::from_value(long["rss_samples"].clone()).unwrap();
    let growth = num(&long, "rss_growth_mb");
    let settled = samples.get(samples.len() / 5).map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let drift = (last as f64 - settled as f64) / 1e6;
    println!(
        "swarm long run: {} messages, rss growth {growth:.1} MB since start, {drift:+.2} MB after warm-up",
        num(&long, "messages")
    );
    record_claims(&[
        (
            "resident memory growth over the whole long run, from the start",
            "MB",
            false,
            growth,
            "goal: under 1 MB",
            1.0,
            1.0,
        ),
        (
            "resident memory growth after warm-up over the long run",
            "MB",
            false,
            drift,
            "goal: under 1 MB",
            1.0,
            1.0,
        ),
    ]);
    json!({
        "messages": long["messages"].as_u64(),
        "rss_growth_mb": growth,
        "rss_drift_after_warmup_mb": drift,
        "rss_samples": samples,
    })
}

const OPEN_RATE_ENV: &str = "HIVE_SWARM_OPEN_RATE";
const OPEN_BALANCING_ENV: &str = "HIVE_SWARM_OPEN_LOAD_AWARE";
const OPEN_POOLS_ENV: &str = "HIVE_SWARM_OPEN_POOLS";

/// The workload at fixed offered rates, each in its own process: 50% and
/// 90% of the closed loop's capacity with load-aware placement and
/// priorities on and off (CPU at equal load), and 120% (overload: the
/// latency of `Critical` tasks and resident memory).
fn open_loop(capacity_tasks_per_sec: f64) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut at = |share: f64, load_aware: bool, pools: bool| {
        let flag = |on: bool| if on { "1" } else { "0" }.to_string();
        let envs = [
            (OPEN_RATE_ENV, (capacity_tasks_per_sec * share).to_string()),
            (OPEN_BALANCING_ENV, flag(load_aware)),
            (OPEN_POOLS_ENV, flag(pools)),
        ];
        let mut row = in_child(&envs, "open-row: ");
        row["offered_share_of_capacity"] = json!(share);
        row["load_aware"] = json!(load_aware);
        row["pools"] = json!(pools);
        println!("swarm open loop: {row}");
        rows.push(row.clone());
        row
    };
    let (half_on, half_off) = (at(0.5, true, true), at(0.5, false, true));
    let half_no_pools = at(0.5, true, false);
    let (most_on, most_off) = (at(0.9, true, true), at(0.9, false, true));
    let over = at(1.2, true, true);
    let balancing_off = "load-aware placement and priorities off, same offered rate";
    let pools_off = "pools off, same offered rate";
    let rss = |row| num(row, "rss_mb");
    record_claims(&[
        (
            "CPU per million messages at 50% of capacity, load-aware on (document: -31%)",
            "CPU s",
            false,
            num(&half_on, "cpu_s_per_million"),
            balancing_off,
            num(&half_off, "cpu_s_per_million"),
            0.69,
        ),
        (
            "CPU per million messages at 90% of capacity, load-aware on (document: -31%)",
            "CPU s",
            false,
            num(&most_on, "cpu_s_per_million"),
            balancing_off,
            num(&most_off, "cpu_s_per_million"),
            0.69,
        ),
        (
            "resident memory with pools at 50% of capacity (document: -30%)",
            "MB",
            false,
            rss(&half_on),
            pools_off,
            rss(&half_no_pools),
            0.7,
        ),
        (
            "allocations per message with pools at 50% of capacity (document: -70%)",
            "allocs/msg",
            false,
            num(&half_on, "allocations_per_message"),
            pools_off,
            num(&half_no_pools, "allocations_per_message"),
            0.3,
        ),
        (
            "tasks delivered at 90% of capacity offered",
            "tasks/s",
            true,
            num(&most_on, "delivered_tasks_per_sec"),
            "offered",
            num(&most_on, "offered_tasks_per_sec"),
            0.98,
        ),
        (
            "Critical task p99 at 120% of capacity offered",
            "us",
            false,
            num(&over, "critical_p99_us"),
            "goal: linger + 1 ms",
            11_000.0,
            1.0,
        ),
        (
            "resident memory at 90% of capacity offered",
            "MB",
            false,
            rss(&most_on),
            "at 50% offered",
            rss(&half_on),
            1.2,
        ),
        (
            "resident memory at 120% of capacity offered",
            "MB",
            false,
            rss(&over),
            "at 50% offered",
            rss(&half_on),
            1.2,
        ),
    ]);
    rows
}

/// In the child process: one open-loop run; prints its row.
fn open_child(rate: &str) {
    let tasks_per_sec: f64 = rate.parse().unwrap();
    let load_aware = std::env::var(OPEN_BALANCING_ENV).is_ok_and(|v| v == "1");
    let pools = std::env::var(OPEN_POOLS_ENV).is_ok_and(|v| v == "1");
    let system = SwarmSystem::builder()
        .optimizations(Optimizations {
            load_aware,
            pools,
            ..Optimizations::default()
        })
        .allocation_counter(allocations)
        .build()
        .unwrap();
    let w = workload(1);
    let o = hive_benches::open_loop::run(
        &system,
        w.workers,
        &w.payloads,
        tasks_per_sec,
        Duration::from_millis(scale(1_000, 300) as u64),
        Duration::from_millis(scale(4_000, 1_000) as u64),
    )
    .unwrap();
    system.shutdown(Duration::from_secs(30));
    let row = json!({
        "offered_tasks_per_sec": o.offered_tasks_per_sec,
        "sent_tasks_per_sec": o.sent_tasks_per_sec,
        "delivered_tasks_per_sec": o.delivered_tasks_per_sec,
        "cpu_s_per_million": o.cpu_s_per_million,
        "rss_mb": o.rss_mb,
        "critical_p50_us": o.critical_p50_us,
        "critical_p99_us": o.critical_p99_us,
        "critical_tasks": o.critical_tasks,
        "allocations_per_message": o.allocations_per_message,
    });
    println!("open-row: {row}");
}

/// A number field of a row (0 when absent).
fn num(row: &serde_json::Value, key: &str) -> f64 {
    row[key].as_f64().unwrap_or(0.0)
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = swarm
}
criterion_main!(benches);
