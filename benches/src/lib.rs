//! Shared helpers for hive's comparison benchmarks (see `benches/`).
//!
//! Every benchmark file measures a hive component beside its anchors in the
//! same criterion group, so `cargo xtask bench` can report ratios from one run.

use std::time::Duration;

/// Whether `HIVE_BENCH_QUICK` asks for the short smoke run.
pub fn quick() -> bool {
    std::env::var_os("HIVE_BENCH_QUICK").is_some_and(|v| v != "0")
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
