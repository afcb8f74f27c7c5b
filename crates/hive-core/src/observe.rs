//! What a running system shows about itself: its measured windows, its
//! regression alerts and, with the `http` feature, the endpoint serving
//! them beside the recorder's metrics and the dashboard.

use hive_metrics::Alert;

use crate::inner::SwarmSystem;
use crate::watch::Window;

impl SwarmSystem {
    /// The measured windows, oldest first: one per
    /// [`history`](crate::SwarmBuilder::history) window (one second, an
    /// hour of them kept, by default).
    pub fn history(&self) -> Vec<Window> {
        self.inner
            .watch
            .as_ref()
            .map(|w| w.history())
            .unwrap_or_default()
    }

    /// The latest regression alerts, oldest first (see
    /// [`watch`](crate::SwarmBuilder::watch)).
    pub fn alerts(&self) -> Vec<Alert> {
        self.inner
            .watch
            .as_ref()
            .map(|w| w.alerts().0)
            .unwrap_or_default()
    }

    /// Where the metrics endpoint listens, when the system was built with
    /// [`serve`](crate::SwarmBuilder::serve).
    #[cfg(feature = "http")]
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        hive_types::sync::lock(&self.inner.server)
            .as_ref()
            .map(hive_metrics::MetricsServer::local_addr)
    }
}

/// The endpoint: the recorder's routes, `/history.json` and `/alerts.json`.
#[cfg(feature = "http")]
pub(crate) mod http {
    use std::net::SocketAddr;
    use std::sync::{Arc, Weak};

    use hive_metrics::{HiveRecorder, JsonSource, MetricsServer};
    use hive_types::HiveResult;
    use serde_json::{json, Value};

    use crate::inner::SystemInner;

    /// Starts serving `recorder` and the system's history and alerts.
    pub(crate) fn serve(
        inner: &Arc<SystemInner>,
        recorder: HiveRecorder,
        addr: SocketAddr,
    ) -> HiveResult<MetricsServer> {
        let documents: Vec<(&'static str, JsonSource)> = vec![
            ("/history.json", source(inner, history)),
            ("/alerts.json", source(inner, alerts)),
        ];
        MetricsServer::start_with(recorder, addr, documents)
    }

    fn source(inner: &Arc<SystemInner>, render: fn(&SystemInner) -> Value) -> JsonSource {
        let weak: Weak<SystemInner> = Arc::downgrade(inner);
        Arc::new(move || match weak.upgrade() {
            Some(inner) => render(&inner).to_string(),
            None => "null".into(),
        })
    }

    fn history(inner: &SystemInner) -> Value {
        let Some(watch) = &inner.watch else {
            return json!({ "windows": [] });
        };
        let windows: Vec<Value> = watch
            .history()
            .iter()
            .map(|w| {
                json!({
                    "end_unix_ms": w.end_unix_ms,
                    "secs": w.secs,
                    "handled_per_sec": w.handled_per_sec,
                    "latency_p50_us": w.latency_p50_us,
                    "latency_p99_us": w.latency_p99_us,
                    "rss_bytes": w.rss_bytes,
                    "cpu_cores": w.cpu_cores,
                })
            })
            .collect();
        json!({
            "window_secs": watch.window_secs(),
            "max_windows": watch.max_windows(),
            "max_bytes": watch.max_history_bytes(),
            "windows": windows,
        })
    }

    fn alerts(inner: &SystemInner) -> Value {
        let Some(watch) = &inner.watch else {
            return json!({ "fired": 0, "alerts": [], "baselines": {} });
        };
        let (recent, fired) = watch.alerts();
        let alerts: Vec<Value> = recent
            .iter()
            .map(|a| {
                json!({
                    "figure": a.key,
                    "baseline": a.baseline,
                    "current": a.current,
                    "change": a.change,
                    "higher_is_better": a.higher_is_better,
                    "windows": a.windows,
                    "text": a.to_string(),
                })
            })
            .collect();
        json!({ "fired": fired, "alerts": alerts, "baselines": watch.baselines() })
    }
}
