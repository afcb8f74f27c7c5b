//! hive-messaging beside per-message crossbeam-channel (bounded 1024) and
//! tokio mpsc (1024), in the same run: delivered messages per second for
//! 1 -> 1 and 4 -> 1, latency at an idle trickle and under saturation, and
//! heap allocations per message.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)] // bench harness code

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hive_benches::alloc::{allocations, CountingAlloc};
use hive_benches::{record, scale, Extra};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PAYLOAD: &[u8] = b"{\"task\":\"summarise\",\"shard\":17,\"priority\":\"normal\",\"ok\":true}";

fn template(from: AgentId, to: AgentId) -> Message {
    Message::new(from, to, Bytes::from_static(PAYLOAD))
}

/// `producers` threads send `per_producer` messages each to one hive agent;
/// returns the time until the consumer has them all.
fn hive_run(comm: &Communicator, producers: usize, per_producer: u64) -> Duration {
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(to).unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let sender = comm.sender();
            let msg = template(from, to);
            std::thread::spawn(move || {
                for _ in 0..per_producer {
                    sender.send(msg.clone()).unwrap();
                }
            })
        })
        .collect();
    let total = producers as u64 * per_producer;
    let mut buf = Vec::with_capacity(256);
    let mut got = 0u64;
    while got < total {
        got += mailbox.recv_many(&mut buf, 256).unwrap() as u64;
        buf.clear();
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    elapsed
}

fn crossbeam_run(producers: usize, per_producer: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Message>(1024);
    let (from, to) = (AgentId::random(), AgentId::random());
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            let msg = template(from, to);
            std::thread::spawn(move || {
                for _ in 0..per_producer {
                    tx.send(msg.clone()).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..producers as u64 * per_producer {
        std::hint::black_box(rx.recv().unwrap());
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    elapsed
}

fn tokio_run(rt: &tokio::runtime::Runtime, producers: usize, per_producer: u64) -> Duration {
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(1024);
        let (from, to) = (AgentId::random(), AgentId::random());
        let start = Instant::now();
        for _ in 0..producers {
            let tx = tx.clone();
            let msg = template(from, to);
            tokio::spawn(async move {
                for _ in 0..per_producer {
                    tx.send(msg.clone()).await.unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..producers as u64 * per_producer {
            std::hint::black_box(rx.recv().await.unwrap());
        }
        start.elapsed()
    })
}

fn throughput(c: &mut Criterion) {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for producers in [1usize, 4] {
        let mut group = c.benchmark_group(format!("messaging.throughput_{producers}to1"));
        group.throughput(Throughput::Elements(1));
        let per = |iters: u64| (iters / producers as u64).max(1);
        group.bench_function("hive", |b| {
            b.iter_custom(|iters| hive_run(&comm, producers, per(iters)))
        });
        group.bench_function("crossbeam_channel", |b| {
            b.iter_custom(|iters| crossbeam_run(producers, per(iters)))
        });
        group.bench_function("tokio_mpsc", |b| {
            b.iter_custom(|iters| tokio_run(&rt, producers, per(iters)))
        });
        group.finish();
    }
}

/// Nanoseconds since `epoch`, carried in the payload to time delivery.
fn stamped(from: AgentId, to: AgentId, epoch: Instant) -> Message {
    let ns = epoch.elapsed().as_nanos() as u64;
    Message::new(from, to, ns.to_le_bytes().to_vec())
}

fn latency_of(m: &Message, epoch: Instant) -> f64 {
    let sent = u64::from_le_bytes(m.payload.as_ref()[..8].try_into().unwrap());
    (epoch.elapsed().as_nanos() as u64).saturating_sub(sent) as f64 / 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Latency in microseconds of `n` messages sent `gap` apart (zero gap:
/// as fast as possible), measured by a consumer waiting in `recv`.
fn hive_latencies(n: usize, gap: Duration) -> Vec<f64> {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(to).unwrap();
    let epoch = Instant::now();
    let sender = comm.sender();
    let producer = std::thread::spawn(move || {
        for _ in 0..n {
            sender.send(stamped(from, to, epoch)).unwrap();
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
    });
    let mut lat: Vec<f64> = (0..n)
        .map(|_| latency_of(&mailbox.recv().unwrap(), epoch))
        .collect();
    producer.join().unwrap();
    lat.sort_by(f64::total_cmp);
    lat
}

fn crossbeam_latencies(n: usize, gap: Duration) -> Vec<f64> {
    let (tx, rx) = crossbeam_channel::bounded::<Message>(1024);
    let (from, to) = (AgentId::random(), AgentId::random());
    let epoch = Instant::now();
    let producer = std::thread::spawn(move || {
        for _ in 0..n {
            tx.send(stamped(from, to, epoch)).unwrap();
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
    });
    let mut lat: Vec<f64> = (0..n)
        .map(|_| latency_of(&rx.recv().unwrap(), epoch))
        .collect();
    producer.join().unwrap();
    lat.sort_by(f64::total_cmp);
    lat
}

fn latency(_: &mut Criterion) {
    let trickle = scale(400, 60);
    let idle = hive_latencies(trickle, Duration::from_millis(5));
    let idle_cb = crossbeam_latencies(trickle, Duration::from_millis(5));
    println!(
        "idle trickle (1 msg / 5 ms, {trickle} msgs): hive p50 {:.1} us p99 {:.1} us; crossbeam p50 {:.1} us p99 {:.1} us",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        percentile(&idle_cb, 0.5),
        percentile(&idle_cb, 0.99)
    );
    record(&Extra {
        component: "hive-messaging",
        case: "idle trickle latency p99 (1 msg / 5 ms)",
        unit: "us",
        higher_is_better: false,
        hive: percentile(&idle, 0.99),
        anchor: "goal: 1 ms",
        anchor_value: 1000.0,
        goal: 1.0,
    });
    record(&Extra {
        component: "hive-messaging",
        case: "idle trickle latency p99 vs crossbeam",
        unit: "us",
        higher_is_better: false,
        hive: percentile(&idle, 0.99),
        anchor: "crossbeam_channel",
        anchor_value: percentile(&idle_cb, 0.99),
        goal: f64::NAN,
    });
    let burst = scale(500_000, 100_000);
    let saturated = hive_latencies(burst, Duration::ZERO);
    let saturated_cb = crossbeam_latencies(burst, Duration::ZERO);
    println!(
        "saturated ({burst} msgs): hive p50 {:.1} us p99 {:.1} us; crossbeam p50 {:.1} us p99 {:.1} us",
        percentile(&saturated, 0.5),
        percentile(&saturated, 0.99),
        percentile(&saturated_cb, 0.5),
        percentile(&saturated_cb, 0.99)
    );
    record(&Extra {
        component: "hive-messaging",
        case: "saturated latency p99",
        unit: "us",
        higher_is_better: false,
        hive: percentile(&saturated, 0.99),
        anchor: "goal: linger + 1 ms",
        anchor_value: 11_000.0,
        goal: 1.0,
    });
}

fn allocations_per_message(_: &mut Criterion) {
    let n = scale(1_000_000, 200_000) as u64;
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    hive_run(&comm, 1, 10_000); // warm the recycler
    let before = allocations();
    hive_run(&comm, 1, n);
    let hive = (allocations() - before) as f64 / n as f64;
    let before = allocations();
    crossbeam_run(1, n);
    let cb = (allocations() - before) as f64 / n as f64;
    println!("allocations per message beyond the payload: hive {hive:.4}, crossbeam {cb:.4}");
    record(&Extra {
        component: "hive-messaging",
        case: "heap allocations per message (beyond payload)",
        unit: "allocs/msg",
        higher_is_better: false,
        hive,
        anchor: "goal: 0.1",
        anchor_value: 0.1,
        goal: 1.0,
    });
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = throughput, latency, allocations_per_message
}
criterion_main!(benches);
