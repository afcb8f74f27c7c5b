//! The recorder through the `metrics` facade: semantics, accuracy, memory,
//! cardinality, exposition formats, regression alerts.

// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]
use std::collections::BTreeMap;

use std::time::Duration;

use hive_metrics::{
    Baseline, HiveError, HiveRecorder, PerformanceMonitor, RecorderConfig, RegressionDetector,
    Snapshot, Thresholds,
};

fn record(recorder: &HiveRecorder, f: impl FnOnce()) {
    metrics::with_local_recorder(recorder, f);
}

#[test]
fn counters_gauges_and_histograms_behave() {
    let r = HiveRecorder::new();
    record(&r, || {
        metrics::describe_counter!("jobs_total", "Jobs finished");
        let c = metrics::counter!("jobs_total", "kind" => "a");
        c.increment(2);
        c.increment(3);
        metrics::counter!("jobs_total", "kind" => "b").increment(1);
        let g = metrics::gauge!("depth");
        g.set(10.0);
        g.increment(2.5);
        g.decrement(0.5);
        let h = metrics::histogram!("wait_seconds");
        for v in [0.001, 0.002, 0.003, 0.004] {
            h.record(v);
        }
    });
    let s = r.snapshot();
    assert_eq!(s.counter_total("jobs_total"), 6);
    assert_eq!(s.counters.len(), 2);
    assert_eq!(s.gauge("depth").unwrap().value, 12.0);
    let h = s.histogram("wait_seconds").unwrap();
    assert_eq!(h.count, 4);
    assert!((h.mean - 0.0025).abs() < 0.0025 * 0.01, "mean {}", h.mean);
    assert!((h.max - 0.004).abs() < 1e-9 && (h.min - 0.001).abs() < 1e-9);
    assert_eq!(
        s.descriptions.get("jobs_total").map(String::as_str),
        Some("Jobs finished")
    );
}

#[test]
fn percentiles_are_within_one_percent_of_an_exact_sort() {
    let r = HiveRecorder::new();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut values: Vec<f64> = (0..200_000)
        .map(|_| 10f64.powf(rng.f64() * 6.0 - 6.0) * (1.0 + rng.f64()))
        .collect();
    record(&r, || {
        let h = metrics::histogram!("latency_seconds");
        for &v in &values {
            h.record(v);
        }
    });
    values.sort_by(f64::total_cmp);
    let exact = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1];
    let h = r.snapshot().histogram("latency_seconds").unwrap().clone();
    for (q, got) in [(0.5, h.p50), (0.95, h.p95), (0.99, h.p99), (0.999, h.p999)] {
        let want = exact(q);
        let err = (got - want).abs() / want;
        assert!(
            err <= 0.01,
            "p{q}: {got} vs exact {want} ({:.3}% off)",
            err * 100.0
        );
    }
}

#[test]
fn histogram_memory_is_flat_after_ten_million_records() {
    let r = HiveRecorder::new();
    let mut rng = fastrand::Rng::with_seed(7);
    // Latencies from 1 us to 1 s, spread over every octave.
    let mut sample = move || 10f64.powf(-6.0 + 6.0 * rng.f64());
    record(&r, || {
        let h = metrics::histogram!("flat");
        for _ in 0..100_000 {
            h.record(sample());
        }
    });
    let early = r.histogram_bytes();
    record(&r, || {
        let h = metrics::histogram!("flat");
        for _ in 0..10_000_000 {
            h.record(sample());
        }
    });
    assert_eq!(
        r.histogram_bytes(),
        early,
        "no memory grows with the sample count"
    );
    assert_eq!(r.snapshot().histogram("flat").unwrap().count, 10_100_000);
}

#[test]
fn the_cardinality_limit_routes_extra_label_sets_to_one_overflow_series() {
    let r = HiveRecorder::with_config(RecorderConfig {
        cardinality_limit: 10,
        ..Default::default()
    })
    .unwrap();
    record(&r, || {
        for id in 0..1000 {
            metrics::counter!("per_agent_total", "agent" => id.to_string()).increment(1);
        }
        metrics::counter!("per_agent_total", "agent" => "3").increment(1); // an admitted one
    });
    let s = r.snapshot();
    let series: Vec<_> = s
        .counters
        .iter()
        .filter(|c| c.name == "per_agent_total")
        .collect();
    assert_eq!(
        series.len(),
        11,
        "10 admitted label sets plus the overflow series"
    );
    let overflow = series
        .iter()
        .find(|c| c.labels.contains_key(hive_metrics::OVERFLOW_LABEL))
        .unwrap();
    assert_eq!(overflow.value, 990);
    assert_eq!(
        s.counter_total("per_agent_total"),
        1001,
        "nothing counted is lost"
    );
    assert_eq!(r.overflowed(), 990);
}

#[test]
fn json_schema_is_stable() {
    let r = HiveRecorder::new();
    record(&r, || {
        metrics::counter!("c_total").increment(1);
        metrics::gauge!("g").set(1.0);
        metrics::histogram!("h").record(1.0);
    });
    let v: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k.join(",")
    };
    assert_eq!(
        keys(&v),
        "counters,descriptions,gauges,histograms,rate_window_secs,taken_at_unix_ms,uptime_secs"
    );
    assert_eq!(keys(&v["counters"][0]), "labels,name,rate_per_sec,value");
    assert_eq!(keys(&v["gauges"][0]), "labels,name,value");
    assert_eq!(
        keys(&v["histograms"][0]),
        "clamped_negative,count,labels,max,mean,min,name,p50,p95,p99,p999,rate_per_sec,sum"
    );
    let back: Snapshot = serde_json::from_value(v).unwrap();
    assert_eq!(back.counter("c_total").unwrap().value, 1);
}

#[test]
fn prometheus_text_has_types_help_and_escaped_labels() {
    let r = HiveRecorder::new();
    record(&r, || {
        metrics::describe_histogram!("rpc_seconds", "RPC latency\nin seconds");
        metrics::counter!("requests", "path" => "/a\"b").increment(7);
        metrics::histogram!("rpc_seconds").record(0.5);
    });
    let text = r.render_prometheus();
    assert!(text.contains("# TYPE requests_total counter\n"), "{text}");
    assert!(
        text.contains("requests_total{path=\"/a\\\"b\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP rpc_seconds RPC latency\\nin seconds\n"),
        "{text}"
    );
    assert!(text.contains("rpc_seconds_count 1\n"), "{text}");
}

#[test]
fn described_units_end_the_exposed_names() {
    let r = HiveRecorder::new();
    record(&r, || {
        metrics::describe_histogram!("rpc", metrics::Unit::Seconds, "RPC time");
        metrics::describe_counter!("sent", metrics::Unit::Bytes, "Bytes sent");
        metrics::describe_gauge!("heap_bytes", metrics::Unit::Bytes, "Heap");
        metrics::histogram!("rpc").record(0.5);
        metrics::counter!("sent").increment(10);
        metrics::gauge!("heap_bytes").set(1.0);
    });
    let text = r.render_prometheus();
    assert!(text.contains("# TYPE rpc_seconds histogram\n"), "{text}");
    assert!(text.contains("# HELP rpc_seconds RPC time\n"), "{text}");
    assert!(text.contains("sent_bytes_total 10\n"), "{text}");
    assert!(
        text.contains("heap_bytes 1\n") && !text.contains("heap_bytes_bytes"),
        "{text}"
    );
    assert_eq!(r.snapshot().units["rpc"], "seconds");
}

#[test]
fn counters_that_would_share_a_prometheus_name_are_kept_apart_and_reported() {
    let r = HiveRecorder::new();
    record(&r, || {
        metrics::counter!("jobs", "q" => "a").increment(1);
        for _ in 0..3 {
            // Registered again and again, as the macro does: one collision.
            metrics::counter!("jobs_total", "q" => "a").increment(2);
        }
        metrics::counter!("jobs_total", "q" => "b").increment(5);
    });
    let text = r.render_prometheus();
    assert_eq!(
        text.matches("# TYPE jobs_total counter").count(),
        1,
        "{text}"
    );
    assert!(text.contains("jobs_total{q=\"a\"} 1\n"), "{text}");
    assert!(text.contains("jobs_collided_total{q=\"a\"} 6\n"), "{text}");
    assert!(text.contains("jobs_collided_total{q=\"b\"} 5\n"), "{text}");
    assert!(
        text.contains("hive_metrics_name_collisions_total 1\n"),
        "{text}"
    );
    let collisions = r.collisions();
    assert_eq!(collisions.len(), 1);
    assert!(
        matches!(&collisions[0], HiveError::MetricNameCollision { name, exposed_as, kept_as }
            if name == "jobs_total" && exposed_as == "jobs_total" && kept_as == "jobs_collided"),
        "{:?}",
        collisions[0]
    );
}

#[test]
fn seconds_are_histograms_with_cumulative_buckets_and_the_rest_summaries() {
    let r = HiveRecorder::new();
    record(&r, || {
        let h = metrics::histogram!("rpc_seconds", "route" => "/plan");
        for ms in 1..=1000 {
            h.record(f64::from(ms) / 1000.0); // 1 ms .. 1 s, uniform
        }
        metrics::histogram!("batch_size").record(12.0);
    });
    let text = r.render_prometheus();
    assert!(text.contains("# TYPE rpc_seconds histogram\n"), "{text}");
    assert!(text.contains("# TYPE batch_size summary\n"), "{text}");
    let bucket = |le: &str| -> u64 {
        let prefix = format!("rpc_seconds_bucket{{route=\"/plan\",le=\"{le}\"}} ");
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
        line[prefix.len()..].parse().unwrap()
    };
    // Within the recorder's 0.4% precision of the exact counts.
    assert!((bucket("0.01") as i64 - 10).abs() <= 1, "{text}");
    assert!((bucket("0.1") as i64 - 100).abs() <= 1, "{text}");
    assert!((bucket("0.5") as i64 - 500).abs() <= 3, "{text}");
    assert_eq!(bucket("+Inf"), 1000);
    let counts: Vec<u64> = ["0.0001", "0.001", "0.01", "0.1", "1", "10", "+Inf"]
        .iter()
        .map(|le| bucket(le))
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {counts:?}"
    );
    let snap = r.snapshot();
    assert!(snap.histogram("batch_size").unwrap().buckets.is_empty());
}

#[test]
fn rates_come_from_successive_snapshots() {
    let r = HiveRecorder::with_config(RecorderConfig {
        rate_window: Duration::from_secs(60),
        ..Default::default()
    })
    .unwrap();
    record(&r, || metrics::counter!("ticks_total").increment(10));
    assert_eq!(
        r.snapshot().counter("ticks_total").unwrap().rate_per_sec,
        None
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    record(&r, || metrics::counter!("ticks_total").increment(10));
    let s = r.snapshot();
    let rate = s.counter("ticks_total").unwrap().rate_per_sec.unwrap();
    assert!(rate > 0.0 && s.rate_window_secs > 0.0);
    assert!(
        (rate * s.rate_window_secs - 10.0).abs() < 1e-6,
        "10 more over the window"
    );
}

#[test]
fn windowed_quantiles_follow_a_latency_change_within_the_window() {
    let window = Duration::from_millis(600);
    let r = HiveRecorder::with_config(RecorderConfig {
        quantile_window: window,
        ..Default::default()
    })
    .unwrap();
    let h = metrics::with_local_recorder(&r, || metrics::histogram!("rpc_latency"));
    // A steady workload, snapshot every tenth of a second (as a monitor or
    // a scraper would); its latency jumps from 2 ms to 50 ms.
    let step = |latency: f64| {
        for _ in 0..100 {
            h.record(latency);
        }
        let snap = r.snapshot();
        std::thread::sleep(window / 6);
        snap.histogram("rpc_latency").unwrap().clone()
    };
    let first = step(0.002);
    assert_eq!(first.window, None, "a first sighting has no earlier copy");
    let mut before = first;
    for _ in 0..9 {
        before = step(0.002);
    }
    let w = before.window.clone().unwrap();
    assert!((w.p50 - 0.002).abs() < 0.0001, "{w:?}");
    let mut after = before;
    for _ in 0..10 {
        after = step(0.050);
    }
    let w = after.window.clone().unwrap();
    assert!(w.count >= 100 && w.secs >= window.as_secs_f64(), "{w:?}");
    assert!((w.p50 - 0.050).abs() < 0.001, "the window moved on: {w:?}");
    assert!((w.p99 - 0.050).abs() < 0.001, "{w:?}");
    assert!(
        (after.p50 - 0.002).abs() < 0.0001,
        "the whole run is still mostly 2 ms: {after:?}"
    );
    let text = r.render_prometheus();
    let median = text
        .lines()
        .find(|l| l.starts_with("rpc_latency{quantile=\"0.5\"}"))
        .unwrap();
    let median: f64 = median.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((median - 0.050).abs() < 0.001, "{text}");
    assert!(
        text.contains("rpc_latency_count 2000"),
        "counts stay cumulative"
    );
    assert!(r.window_bytes() > 0);
}

#[test]
fn a_window_with_no_sample_shows_nan_quantiles() {
    let r = HiveRecorder::with_config(RecorderConfig {
        quantile_window: Duration::from_millis(20),
        ..Default::default()
    })
    .unwrap();
    record(&r, || metrics::histogram!("idle_wait").record(0.5));
    r.snapshot();
    std::thread::sleep(Duration::from_millis(30));
    r.snapshot();
    std::thread::sleep(Duration::from_millis(30));
    let s = r.snapshot();
    let h = s.histogram("idle_wait").unwrap();
    assert_eq!(h.window.as_ref().unwrap().count, 0, "{h:?}");
    assert_eq!(h.count, 1);
    let text = hive_metrics::prometheus::render(&s);
    assert!(text.contains("idle_wait{quantile=\"0.99\"} NaN"), "{text}");
}

fn window(rng: &mut fastrand::Rng, throughput: f64, p99: f64) -> BTreeMap<String, f64> {
    // +-4% noise: inside the 10% / 20% thresholds.
    let noise = |rng: &mut fastrand::Rng| 1.0 + (rng.f64() - 0.5) * 0.08;
    BTreeMap::from([
        ("throughput".to_string(), throughput * noise(rng)),
        ("p99".to_string(), p99 * noise(rng)),
    ])
}

#[test]
fn regressions_fire_on_a_slowdown_and_stay_silent_on_noise() {
    let mut base = Baseline::new("main");
    base.insert("throughput", 1_000_000.0, true, "msg/s");
    base.insert("p99", 0.010, false, "s");
    let base = Baseline::from_json(&base.to_json()).unwrap();
    let mut detector = RegressionDetector::new(base.clone(), Thresholds::default()).unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..20 {
        assert!(detector
            .observe(&window(&mut rng, 1_000_000.0, 0.010))
            .is_empty());
    }
    // A 20% slowdown: throughput down 20%, latency up 25%.
    let mut alerts = Vec::new();
    for _ in 0..3 {
        alerts.extend(detector.observe(&window(&mut rng, 800_000.0, 0.0125)));
    }
    let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, vec!["p99", "throughput"], "{alerts:?}");
    assert!(alerts[1].change < -0.15);
    assert_eq!(detector.alerts_fired(), 2);
    let once = RegressionDetector::compare(
        &base,
        &window(&mut rng, 700_000.0, 0.01),
        &Thresholds::default(),
    );
    assert_eq!(once.len(), 1);
}

#[test]
fn unusable_settings_are_config_errors_naming_the_field() {
    let field = |r: Result<(), HiveError>| match r {
        Err(HiveError::Config { field, .. }) => field,
        other => panic!("expected a config error, got {other:?}"),
    };
    let recorder = |c: RecorderConfig| HiveRecorder::with_config(c).map(drop);
    assert_eq!(
        field(recorder(RecorderConfig {
            cardinality_limit: 0,
            ..Default::default()
        })),
        "cardinality_limit"
    );
    for precision in [0, 11] {
        assert_eq!(
            field(recorder(RecorderConfig {
                precision,
                ..Default::default()
            })),
            "precision"
        );
    }
    assert_eq!(
        field(recorder(RecorderConfig {
            rate_window: Duration::ZERO,
            ..Default::default()
        })),
        "rate_window"
    );
    for bounds in [vec![], vec![1.0, 0.5], vec![f64::NAN]] {
        assert_eq!(
            field(recorder(RecorderConfig {
                histogram_buckets: vec![("*_seconds".into(), bounds)],
                ..Default::default()
            })),
            "histogram_buckets"
        );
    }
    assert_eq!(
        field(PerformanceMonitor::new(HiveRecorder::new(), 0).map(drop)),
        "capacity"
    );
    let detector = |t: Thresholds| RegressionDetector::new(Baseline::new("b"), t).map(drop);
    assert_eq!(
        field(detector(Thresholds {
            consecutive: 0,
            ..Default::default()
        })),
        "consecutive"
    );
    assert_eq!(
        field(detector(Thresholds {
            throughput_drop: 1.5,
            ..Default::default()
        })),
        "throughput_drop"
    );
    assert_eq!(
        field(detector(Thresholds {
            latency_rise: f64::NAN,
            ..Default::default()
        })),
        "latency_rise"
    );
}

#[test]
fn installing_a_second_global_recorder_says_it_is_already_set() {
    let first = HiveRecorder::new();
    let _ = first.install(); // another test binary may not have one yet
    assert!(matches!(
        HiveRecorder::new().install(),
        Err(HiveError::AlreadySet { .. })
    ));
}
