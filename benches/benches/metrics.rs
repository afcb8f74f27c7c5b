//! hive-metrics beside metrics-exporter-prometheus, in the same run:
//! counter increment and histogram record through a cached handle and
//! through the macro, render of 1,000 series, render after 10 million
//! histogram samples, and histogram memory.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use hive_benches::{median, record, scale, Extra};
use hive_metrics::HiveRecorder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

fn exporter() -> PrometheusRecorder {
    PrometheusBuilder::new().build_recorder()
}

fn handles(c: &mut Criterion) {
    let hive = HiveRecorder::new();
    let prom = exporter();

    let mut group = c.benchmark_group("metrics.counter_handle");
    let counter = metrics::with_local_recorder(&hive, || metrics::counter!("ops_total"));
    group.bench_function("hive", |b| b.iter(|| counter.increment(black_box(1))));
    let counter = metrics::with_local_recorder(&prom, || metrics::counter!("ops_total"));
    group.bench_function("metrics_exporter_prometheus", |b| {
        b.iter(|| counter.increment(black_box(1)))
    });
    group.finish();

    let mut group = c.benchmark_group("metrics.histogram_handle");
    let hist = metrics::with_local_recorder(&hive, || metrics::histogram!("op_seconds"));
    group.bench_function("hive", |b| b.iter(|| hist.record(black_box(0.000_25))));
    let hist = metrics::with_local_recorder(&prom, || metrics::histogram!("op_seconds"));
    group.bench_function("metrics_exporter_prometheus", |b| {
        b.iter(|| hist.record(black_box(0.000_25)))
    });
    group.finish();
    // The exporter buffers samples until it renders: drain what the
    // benchmark left so later cases do not pay for it.
    prom.handle().render();

    let mut group = c.benchmark_group("metrics.counter_macro");
    group.bench_function("hive", |b| {
        metrics::with_local_recorder(&hive, || {
            b.iter(|| metrics::counter!("macro_total", "kind" => "a").increment(1))
        })
    });
    group.bench_function("metrics_exporter_prometheus", |b| {
        metrics::with_local_recorder(&prom, || {
            b.iter(|| metrics::counter!("macro_total", "kind" => "a").increment(1))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("metrics.histogram_macro");
    group.bench_function("hive", |b| {
        metrics::with_local_recorder(&hive, || {
            b.iter(|| metrics::histogram!("macro_seconds").record(black_box(0.001)))
        })
    });
    group.bench_function("metrics_exporter_prometheus", |b| {
        metrics::with_local_recorder(&prom, || {
            b.iter(|| metrics::histogram!("macro_seconds").record(black_box(0.001)))
        })
    });
    group.finish();
    prom.handle().render();
}

/// 1,000 series: 400 counters, 400 gauges, 200 histograms of 100 samples.
fn fill_series(r: &dyn metrics::Recorder) {
    metrics::with_local_recorder(r, || {
        for i in 0..400 {
            metrics::counter!("series_total", "id" => i.to_string()).increment(i);
            metrics::gauge!("series_gauge", "id" => i.to_string()).set(i as f64);
        }
        for i in 0..200 {
            let h = metrics::histogram!("series_seconds", "id" => i.to_string());
            for s in 0..100 {
                h.record(f64::from(s) * 1e-4);
            }
        }
    });
}

fn render_1000(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics.render_1000_series");
    let hive = HiveRecorder::new();
    fill_series(&hive);
    group.bench_function("hive", |b| b.iter(|| black_box(hive.render_prometheus())));
    let prom = exporter();
    fill_series(&prom);
    let handle = prom.handle();
    group.bench_function("metrics_exporter_prometheus", |b| {
        b.iter(|| black_box(handle.render()))
    });
    group.finish();
}

/// Time of one render right after `samples` histogram records.
fn render_after(samples: usize, rounds: usize) -> (f64, f64, usize, usize) {
    let (mut hive_t, mut prom_t) = (Vec::new(), Vec::new());
    let (mut bytes_small, mut bytes_large) = (0, 0);
    for _ in 0..rounds {
        let hive = HiveRecorder::new();
        let h = metrics::with_local_recorder(&hive, || metrics::histogram!("big_seconds"));
        for i in 0..samples {
            h.record((i % 10_000) as f64 * 1e-6 + 1e-6);
            if i == samples / 10 {
                bytes_small = hive.histogram_bytes();
            }
        }
        bytes_large = hive.histogram_bytes();
        let t = Instant::now();
        black_box(hive.render_prometheus());
        hive_t.push(t.elapsed().as_secs_f64());

        let prom = exporter();
        let h = metrics::with_local_recorder(&prom, || metrics::histogram!("big_seconds"));
        for i in 0..samples {
            h.record((i % 10_000) as f64 * 1e-6 + 1e-6);
        }
        let t = Instant::now();
        black_box(prom.handle().render());
        prom_t.push(t.elapsed().as_secs_f64());
    }
    (
        median(&mut hive_t),
        median(&mut prom_t),
        bytes_small,
        bytes_large,
    )
}

fn render_after_samples(_: &mut Criterion) {
    let samples = scale(10_000_000, 1_000_000);
    let (hive, prom, small, large) = render_after(samples, scale(3, 1));
    println!(
        "render after {samples} histogram samples: hive {:.3} ms, exporter {:.1} ms ({:.0}x); hive histogram memory {small} B at 10% and {large} B at 100%",
        hive * 1e3,
        prom * 1e3,
        prom / hive
    );
    record(&Extra {
        component: "hive-metrics",
        case: "render after 10 M histogram samples",
        unit: "ms",
        higher_is_better: false,
        hive: hive * 1e3,
        anchor: "metrics_exporter_prometheus",
        anchor_value: prom * 1e3,
        goal: 0.01,
    });
    record(&Extra {
        component: "hive-metrics",
        case: "histogram memory, 100% vs 10% of the samples",
        unit: "bytes",
        higher_is_better: false,
        hive: large as f64,
        anchor: "same histogram at 10% of the samples",
        anchor_value: small as f64,
        goal: 1.0,
    });
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = handles, render_1000, render_after_samples
}
criterion_main!(benches);
