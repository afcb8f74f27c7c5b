//! # hive-metrics
//!
//! A [`metrics`] recorder for hive (and anything else that records through
//! the `metrics` facade), built to be cheap on the hot path and honest in
//! what it reports:
//!
//! - [`HiveRecorder`]: atomic counters and gauges; histograms aggregated as
//!   samples arrive into log-linear buckets (bounded memory per series,
//!   percentiles within 0.4%), where metrics-exporter-prometheus buffers
//!   every sample until it renders. A cardinality limit per metric name
//!   routes extra label sets to one overflow series.
//! - [`Snapshot`]: every series with rates per second, min/max/mean and
//!   P50/P95/P99/P999 over the whole run and over a recent window
//!   ([`WindowQuantiles`], 60 s by default), as a typed struct, as JSON,
//!   and as Prometheus text exposition format 0.0.4 ([`prometheus::render`]).
//! - `MetricsServer` (feature `http`): `/metrics`, `/metrics.json` and a
//!   self-contained live dashboard at `/`.
//! - [`PerformanceMonitor`]: samples on an interval into a bounded history
//!   and calls hooks each tick.
//! - [`Baseline`] and [`RegressionDetector`]: typed [`Alert`]s when a figure
//!   moves past a threshold for several windows in a row; [`LiveWatch`]
//!   does the same on a running system against a baseline it learns from
//!   its own recent windows.
//!
//! ```
//! use hive_metrics::HiveRecorder;
//!
//! let recorder = HiveRecorder::new();
//! metrics::with_local_recorder(&recorder, || {
//!     let latency = metrics::histogram!("request_seconds", "route" => "/plan");
//!     for ms in 1..=100 {
//!         latency.record(ms as f64 / 1000.0);
//!     }
//!     metrics::counter!("requests_total", "route" => "/plan").increment(100);
//! });
//! let snap = recorder.snapshot();
//! let h = snap.histogram("request_seconds").unwrap();
//! assert!((h.p99 - 0.099).abs() < 0.001);
//! assert!(recorder.render_prometheus().contains("# TYPE request_seconds histogram"));
//! ```
//!
//! Install it once at startup with [`HiveRecorder::install`], before the
//! components that cache metric handles are created.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod config;
mod keyed;
mod live;
mod monitor;
pub mod prometheus;
mod recorder;
mod regression;
mod series;
mod snapshot;
mod window;

#[cfg(feature = "http")]
mod http;

#[cfg(feature = "http")]
pub use http::{router, router_with, JsonSource, MetricsServer, DASHBOARD_HTML};
/// The `metrics` facade hive records through, re-exported so its macros
/// (`metrics::counter!` and the rest) need no dependency of their own.
pub use metrics;

pub use config::RecorderConfig;
pub use hive_types::{HiveError, HiveResult};
pub use live::{LiveWatch, WatchConfig};
pub use monitor::PerformanceMonitor;
pub use recorder::{HiveRecorder, OVERFLOW_LABEL};
pub use regression::{Alert, Baseline, BaselineEntry, RegressionDetector, Thresholds};
pub use snapshot::{CounterSample, GaugeSample, HistogramSummary, Labels, Snapshot};
pub use window::WindowQuantiles;
