//! The end-to-end run's own file, `swarm.json`: the ablation rows and the
//! memory samples of the long run.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// One configuration of the end-to-end run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AblationRow {
    pub configuration: String,
    pub messages_per_sec: f64,
    pub tasks_per_sec: Option<f64>,
    pub latency_p50_us: f64,
    pub latency_p95_us: Option<f64>,
    pub latency_p99_us: f64,
    pub latency_p999_us: Option<f64>,
    pub rss_mb: Option<f64>,
    pub rss_peak_mb: Option<f64>,
    pub cpu_s_per_million: Option<f64>,
    pub allocations_per_message: Option<f64>,
    pub worker_busy: Vec<f64>,
    pub worker_cpu: Vec<Option<f64>>,
    pub delivery_success: f64,
    pub bandwidth_saved: Option<f64>,
}

/// The long run's memory figures.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LongRun {
    pub messages: u64,
    pub rss_growth_mb: f64,
    pub rss_drift_after_warmup_mb: f64,
    /// `(seconds since start, resident bytes)`.
    pub rss_samples: Vec<(f64, u64)>,
}

/// `swarm.json` as the swarm bench writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SwarmRun {
    /// Tasks of each in-process configuration.
    pub tasks: u64,
    /// Tasks of the two TCP configurations.
    pub tcp_tasks: u64,
    pub ablation: Vec<AblationRow>,
    pub long_run: LongRun,
    /// hive-core's `SystemReport` table of the all-on run.
    pub report_table: String,
}

impl SwarmRun {
    /// Reads `path`; `None` when the swarm bench did not run.
    pub(crate) fn load(path: &Path) -> Result<Option<SwarmRun>> {
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)?;
        let run =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(run))
    }
}
