//! Pool statistics reach the `metrics` facade with the pool's name as label.
#![cfg(feature = "metrics")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use hive_mempool::{Pool, PoolConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn maintain_publishes_labelled_figures() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let pool = Pool::<String>::new(PoolConfig::new("names", 8)).unwrap();
    drop(pool.pull());
    drop(pool.pull());
    metrics::with_local_recorder(&recorder, || pool.maintain());

    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        assert!(
            key.labels()
                .any(|l| l.key() == "pool" && l.value() == "names"),
            "{key:?} lacks the pool label"
        );
        seen.insert(key.name().to_string(), value);
    }
    assert_eq!(
        seen.get("hive_pool_hits_total"),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        seen.get("hive_pool_misses_total"),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        seen.get("hive_pool_idle"),
        Some(&DebugValue::Gauge(1.0.into()))
    );
    assert_eq!(
        seen.get("hive_pool_hit_ratio"),
        Some(&DebugValue::Gauge(0.5.into()))
    );
    assert!(seen.contains_key("hive_pool_retained_bytes"));
}
