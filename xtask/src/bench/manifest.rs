//! Which criterion results are compared with which, and the goal of each
//! comparison, as the component issues state them.

/// How a criterion median is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Measure {
    /// Time per iteration, in ns (lower is better).
    Time,
    /// Elements (or bytes, as MB) per second from the benchmark's declared
    /// throughput (higher is better), with the unit to print.
    Rate(&'static str),
}

/// What hive is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Anchor {
    /// Another benchmark of the same run: its criterion id and display name.
    Bench(&'static str, &'static str),
    /// A fixed figure the issue asks for, in the comparison's unit.
    Fixed(&'static str, f64),
}

/// The goal of a comparison, a ratio `hive / anchor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    /// No goal: shown for context.
    None,
    /// A fixed ratio.
    Ratio(f64),
    /// At most `n` ns more than the anchor (so the ratio depends on it).
    PlusNanos(f64),
}

/// One comparison of a hive benchmark with an anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Comparison {
    pub component: &'static str,
    pub case: &'static str,
    pub measure: Measure,
    /// Criterion id of hive's benchmark (`group/function[/value]`).
    pub hive: &'static str,
    pub anchor: Anchor,
    pub goal: Goal,
}

const fn cmp(
    component: &'static str,
    case: &'static str,
    measure: Measure,
    hive: &'static str,
    anchor: Anchor,
    goal: Goal,
) -> Comparison {
    Comparison {
        component,
        case,
        measure,
        hive,
        anchor,
        goal,
    }
}

use Anchor::{Bench, Fixed};
use Goal::{PlusNanos, Ratio};
use Measure::{Rate, Time};

const TYPES: &str = "hive-types";
const POOL: &str = "hive-mempool";
const MSG: &str = "hive-messaging";
const CPU: &str = "hive-cpubalance";
const MET: &str = "hive-metrics";
const CORE: &str = "hive-core";

/// Pool cases: each object kind beside plain allocation and both pools.
macro_rules! pool_cases {
    ($($name:literal => $case:literal),* $(,)?) => {[$(
        cmp(POOL, $case, Time, concat!("mempool.", $name, "/hive"),
            Bench(concat!("mempool.", $name, "/malloc"), "malloc"), Ratio(0.5)),
        cmp(POOL, $case, Time, concat!("mempool.", $name, "/hive"),
            Bench(concat!("mempool.", $name, "/object_pool"), "object-pool"), Ratio(1.0 / 3.0)),
        cmp(POOL, $case, Time, concat!("mempool.", $name, "/hive"),
            Bench(concat!("mempool.", $name, "/lockfree_object_pool"), "lockfree-object-pool"), Ratio(0.5)),
        cmp(POOL, concat!($case, ", stats on"), Time, concat!("mempool.", $name, "/hive"),
            Bench(concat!("mempool.", $name, "/hive_stats_off"), "hive, stats off"), PlusNanos(1.0)),
    )*]};
}

const POOLS: [Comparison; 16] = pool_cases![
    "vec_1k" => "pull + reset + return Vec<u8> 1 KiB",
    "vec_64k" => "pull + reset + return Vec<u8> 64 KiB",
    "string" => "pull + reset + return String",
    "uuid_list_16" => "pull + reset + return Vec<Uuid> of 16",
];

#[rustfmt::skip]
const OTHERS: [Comparison; 27] = [
    cmp(TYPES, "id creation", Time, "types.id_creation/hive",
        Bench("types.id_creation/uuid_new_v4", "uuid new_v4"), Ratio(0.2)),
    cmp(POOL, "Vec<u8> 1 KiB, two threads on one pool (per op)", Time, "mempool.vec_1k_threads/hive/2",
        Bench("mempool.vec_1k_threads/hive/1", "hive, one thread"), Ratio(1.5)),
    cmp(POOL, "Vec<u8> 1 KiB, two threads on one pool (per op)", Time, "mempool.vec_1k_threads/hive/2",
        Bench("mempool.vec_1k_threads/malloc/2", "malloc"), Goal::None),
    cmp(POOL, "Vec<u8> 1 KiB, pull on one thread, return on another", Time, "mempool.vec_1k_cross_thread/hive",
        Bench("mempool.vec_1k_cross_thread/malloc", "malloc"), Goal::None),
    cmp(POOL, "Vec<u8> 1 KiB, pull on one thread, return on another", Time, "mempool.vec_1k_cross_thread/hive",
        Bench("mempool.vec_1k_cross_thread/lockfree_object_pool", "lockfree-object-pool"), Goal::None),
    cmp(MSG, "throughput 1 -> 1", Rate("msg/s"), "messaging.throughput_1to1/hive",
        Bench("messaging.throughput_1to1/crossbeam_channel", "crossbeam-channel"), Ratio(1.5)),
    cmp(MSG, "throughput 1 -> 1", Rate("msg/s"), "messaging.throughput_1to1/hive",
        Bench("messaging.throughput_1to1/tokio_mpsc", "tokio mpsc"), Ratio(4.0)),
    cmp(MSG, "throughput 4 -> 1", Rate("msg/s"), "messaging.throughput_4to1/hive",
        Bench("messaging.throughput_4to1/crossbeam_channel", "crossbeam-channel"), Ratio(1.5)),
    cmp(MSG, "throughput 4 -> 1", Rate("msg/s"), "messaging.throughput_4to1/hive",
        Bench("messaging.throughput_4to1/tokio_mpsc", "tokio mpsc"), Ratio(4.0)),
    cmp(CPU, "no-op fire-and-forget tasks", Rate("tasks/s"), "cpubalance.noop_spawn/hive",
        Bench("cpubalance.noop_spawn/rayon_spawn", "rayon spawn"), Ratio(1.0)),
    cmp(CPU, "no-op fire-and-forget tasks", Rate("tasks/s"), "cpubalance.noop_spawn/hive",
        Bench("cpubalance.noop_spawn/tokio_spawn", "tokio spawn"), Ratio(2.0)),
    cmp(CPU, "no-op fire-and-forget tasks", Rate("tasks/s"), "cpubalance.noop_spawn/hive",
        Bench("cpubalance.noop_spawn/tokio_spawn_blocking", "tokio spawn_blocking"), Goal::None),
    cmp(CPU, "no-op fire-and-forget tasks, stats on", Rate("tasks/s"), "cpubalance.noop_spawn/hive",
        Bench("cpubalance.noop_spawn/hive_stats_off", "hive, stats off"), Ratio(0.9)),
    cmp(CPU, "no-op tasks with handles", Rate("tasks/s"), "cpubalance.noop_handles/hive",
        Bench("cpubalance.noop_handles/rayon_spawn", "rayon spawn"), Ratio(0.5)),
    cmp(CPU, "no-op tasks with handles", Rate("tasks/s"), "cpubalance.noop_handles/hive",
        Bench("cpubalance.noop_handles/tokio_spawn", "tokio spawn"), Goal::None),
    cmp(MET, "counter increment, cached handle", Time, "metrics.counter_handle/hive",
        Fixed("goal: 5 ns", 5.0), Ratio(1.0)),
    cmp(MET, "counter increment, cached handle", Time, "metrics.counter_handle/hive",
        Bench("metrics.counter_handle/metrics_exporter_prometheus", "metrics-exporter-prometheus"), Goal::None),
    cmp(MET, "counter increment, macro", Time, "metrics.counter_macro/hive",
        Bench("metrics.counter_macro/metrics_exporter_prometheus", "metrics-exporter-prometheus"), Goal::None),
    cmp(MET, "histogram record, cached handle", Time, "metrics.histogram_handle/hive",
        Bench("metrics.histogram_handle/metrics_exporter_prometheus", "metrics-exporter-prometheus"), Ratio(0.5)),
    cmp(MET, "histogram record, macro", Time, "metrics.histogram_macro/hive",
        Bench("metrics.histogram_macro/metrics_exporter_prometheus", "metrics-exporter-prometheus"), Ratio(0.5)),
    cmp(MET, "render 1,000 series", Time, "metrics.render_1000_series/hive",
        Fixed("goal: 1 ms", 1e6), Ratio(1.0)),
    cmp(MET, "render 1,000 series", Time, "metrics.render_1000_series/hive",
        Bench("metrics.render_1000_series/metrics_exporter_prometheus", "metrics-exporter-prometheus"), Goal::None),
    cmp(MSG, "wire encode speed, zstd batch of 50", Rate("MB/s"), "wire.encode/hive_zstd3_batch50",
        Bench("wire.encode/document_gzip6_per_message", "document scheme (gzip-6 per message > 1 KiB)"), Ratio(2.5)),
    cmp(MSG, "wire encode speed, zstd + dictionary batch of 50", Rate("MB/s"), "wire.encode/hive_zstd3_dict_batch50",
        Bench("wire.encode/document_gzip6_per_message", "document scheme (gzip-6 per message > 1 KiB)"), Ratio(2.5)),
    cmp(MSG, "wire encode speed, gzip-6 batch of 50", Rate("MB/s"), "wire.encode/hive_gzip6_batch50",
        Bench("wire.encode/document_gzip6_per_message", "document scheme (gzip-6 per message > 1 KiB)"), Goal::None),
    cmp(MSG, "wire decode speed, zstd batch of 50 (one core)", Rate("MB/s"), "wire.decode/hive_zstd3_batch50",
        Fixed("goal: 800 MB/s", 800.0), Ratio(1.0)),
    cmp(MSG, "wire decode speed, zstd batch of 50 (one core)", Rate("MB/s"), "wire.decode/hive_zstd3_batch50",
        Bench("wire.decode/document_gzip6_per_message", "document scheme (gzip-6 per message > 1 KiB)"), Goal::None),
];

/// The agent runtime beside the actor frameworks (issue: "an agent
/// runtime an AI orchestrator would pick over kameo or ractor").
#[rustfmt::skip]
const AGENTS: [Comparison; 19] = [
    cmp(CORE, "tell 1 -> 1", Rate("msg/s"), "agents.tell_1to1/hive",
        Bench("agents.tell_1to1/kameo", "kameo"), Ratio(1.0)),
    cmp(CORE, "tell 1 -> 1", Rate("msg/s"), "agents.tell_1to1/hive",
        Bench("agents.tell_1to1/ractor", "ractor"), Ratio(1.0)),
    cmp(CORE, "tell 1 -> 1", Rate("msg/s"), "agents.tell_1to1/hive",
        Bench("agents.tell_1to1/actix", "actix"), Ratio(1.0)),
    cmp(CORE, "tell 1 -> 1, sync agent on the balancer", Rate("msg/s"), "agents.tell_1to1/hive_sync",
        Bench("agents.tell_1to1/actix", "actix"), Goal::None),
    cmp(CORE, "tell 8 -> 1", Rate("msg/s"), "agents.tell_8to1/hive",
        Bench("agents.tell_8to1/kameo", "kameo"), Ratio(1.0)),
    cmp(CORE, "tell 8 -> 1", Rate("msg/s"), "agents.tell_8to1/hive",
        Bench("agents.tell_8to1/ractor", "ractor"), Ratio(1.0)),
    cmp(CORE, "tell 8 -> 1", Rate("msg/s"), "agents.tell_8to1/hive",
        Bench("agents.tell_8to1/actix", "actix"), Ratio(1.0)),
    cmp(CORE, "tell 8 -> 1, sync agent on the balancer", Rate("msg/s"), "agents.tell_8to1/hive_sync",
        Bench("agents.tell_8to1/actix", "actix"), Goal::None),
    cmp(CORE, "ask round trip (mean)", Time, "agents.ask/hive",
        Bench("agents.ask/kameo", "kameo"), Goal::None),
    cmp(CORE, "ask round trip (mean)", Time, "agents.ask/hive",
        Bench("agents.ask/ractor", "ractor"), Goal::None),
    cmp(CORE, "ask round trip (mean)", Time, "agents.ask/hive",
        Bench("agents.ask/actix", "actix"), Goal::None),
    cmp(CORE, "spawn 10,000 agents + one message each", Time, "agents.spawn_10k/hive",
        Bench("agents.spawn_10k/actix", "actix"), Ratio(1.0)),
    cmp(CORE, "spawn 10,000 agents + one message each", Time, "agents.spawn_10k/hive",
        Bench("agents.spawn_10k/kameo", "kameo"), Goal::None),
    cmp(CORE, "spawn 10,000 agents + one message each", Time, "agents.spawn_10k/hive",
        Bench("agents.spawn_10k/ractor", "ractor"), Goal::None),
    cmp(CORE, "1,000 agents x 10 messages awaiting a 20 ms call (ideal 0.2 s)", Time, "agents.io_bound/hive",
        Fixed("goal: 1.05 x ideal", 0.21e9), Ratio(1.0)),
    cmp(CORE, "1,000 agents x 10 messages awaiting a 20 ms call (ideal 0.2 s)", Time, "agents.io_bound/hive",
        Bench("agents.io_bound/kameo", "kameo"), Goal::None),
    cmp(CORE, "1,000 agents x 10 messages awaiting a 20 ms call (ideal 0.2 s)", Time, "agents.io_bound/hive",
        Bench("agents.io_bound/ractor", "ractor"), Goal::None),
    cmp(CORE, "1,000 agents x 10 messages awaiting a 20 ms call (ideal 0.2 s)", Time, "agents.io_bound/hive",
        Bench("agents.io_bound/actix", "actix"), Goal::None),
    cmp(CORE, "tell 1 -> 1, async vs sync agent", Rate("msg/s"), "agents.tell_1to1/hive",
        Bench("agents.tell_1to1/hive_sync", "hive sync agent"), Goal::None),
];

/// Every comparison read from criterion's results.
pub(crate) fn comparisons() -> impl Iterator<Item = &'static Comparison> {
    OTHERS.iter().chain(POOLS.iter()).chain(AGENTS.iter())
}

/// The benchmark targets of `hive-benches`, in the order they run.
pub(crate) const BENCHES: [&str; 9] = [
    "types",
    "mempool",
    "messaging",
    "cpubalance",
    "metrics",
    "wire",
    "nats",
    "agents",
    "swarm",
];
