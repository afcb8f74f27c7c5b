//! Shared helpers for hive's comparison benchmarks (see `benches/`).
//!
//! Every benchmark file measures a hive component beside its anchors in the
//! same criterion group, so `cargo xtask bench` can report ratios from one
//! run. Figures criterion cannot express (percentiles, allocation counts,
//! compression ratios) are written by [`record`] to
//! `target/hive-bench/extra.jsonl`, one JSON object per line.
// Benchmark support code: failing loudly is the right behaviour here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

pub mod actors;
pub mod alloc;
pub mod corpus;
pub mod open_loop;
pub mod tls;
pub mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Whether `HIVE_BENCH_QUICK` asks for the short smoke run.
pub fn quick() -> bool {
    std::env::var_os("HIVE_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// `full` normally, `quick_value` in quick mode.
pub fn scale(full: usize, quick_value: usize) -> usize {
    if quick() {
        quick_value
    } else {
        full
    }
}

/// Criterion settings: short in quick mode, several seconds per case otherwise.
pub fn criterion_config() -> criterion::Criterion {
    let c = criterion::Criterion::default().configure_from_args();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30)
    }
}

/// Where extra measurements go: `$CARGO_TARGET_DIR` or the workspace
/// `target/`, then `hive-bench/extra.jsonl`.
pub fn extra_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("hive-bench").join("extra.jsonl")
}

/// One measured comparison that criterion's timings do not carry.
#[derive(Debug, Clone)]
pub struct Extra<'a> {
    /// Crate name, e.g. `hive-messaging`.
    pub component: &'a str,
    /// What was measured, e.g. `idle latency p99`.
    pub case: &'a str,
    /// Unit of `hive` and `anchor_value`.
    pub unit: &'a str,
    /// Whether larger is better.
    pub higher_is_better: bool,
    /// hive's figure (a median over rounds where there are rounds).
    pub hive: f64,
    /// Name of the anchor, or `goal` when the comparison is with a fixed goal.
    pub anchor: &'a str,
    /// The anchor's figure.
    pub anchor_value: f64,
    /// The ratio `hive / anchor_value` the issue asks for.
    pub goal: f64,
}

/// Appends `extra` to the extra-measurements file and prints it.
pub fn record(extra: &Extra<'_>) {
    let ratio = if extra.anchor_value == 0.0 {
        f64::NAN
    } else {
        extra.hive / extra.anchor_value
    };
    let line = format!(
        "{{\"component\":{:?},\"case\":{:?},\"unit\":{:?},\"higher_is_better\":{},\"hive\":{},\"anchor\":{:?},\"anchor_value\":{},\"ratio\":{},\"goal\":{}}}",
        extra.component,
        extra.case,
        extra.unit,
        extra.higher_is_better,
        json_number(extra.hive),
        extra.anchor,
        json_number(extra.anchor_value),
        json_number(ratio),
        json_number(extra.goal),
    );
    println!("extra: {line}");
    let path = extra_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// Median of `values` (0 for none).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
