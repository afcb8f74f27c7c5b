//! [`SystemReport`]: the seed design's table, every figure measured.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hive_types::AgentId;

use crate::inner::SystemInner;
use crate::options::Optimizations;
use crate::procstat;
use hive_types::sync::lock;

/// The system's figures since it was built. Nothing in it is a constant:
/// each comes from a counter, a histogram, the balancer or the kernel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SystemReport {
    /// Optimizations in effect.
    pub optimizations: Optimizations,
    /// Seconds since the system was built.
    pub uptime_secs: f64,
    /// Messages handled by agents.
    pub messages_handled: u64,
    /// Messages handled per second of uptime.
    pub messages_per_sec: f64,
    /// Tasks run by the balancer (agent runs and submitted work).
    pub tasks_completed: u64,
    /// Tasks per second of uptime.
    pub tasks_per_sec: f64,
    /// Creation-to-handling latency percentiles, microseconds.
    pub latency_us: Percentiles,
    /// Messages the latency figures stand for (one in every few handled
    /// is timed); 0 means the percentiles are not a measurement yet.
    pub latency_samples: u64,
    /// Resident memory now, if the platform tells.
    pub rss_bytes: Option<u64>,
    /// Resident memory growth since the system was built.
    pub rss_growth_bytes: Option<i64>,
    /// Highest resident memory of the process: the kernel's high-water
    /// mark (`VmHWM`) where it keeps one, else the highest reading taken.
    pub rss_peak_bytes: Option<u64>,
    /// Resident memory over the run: (seconds, bytes), one per tick.
    pub rss_samples: Vec<(f64, u64)>,
    /// Process CPU seconds (user + system) since the system was built.
    pub cpu_seconds: Option<f64>,
    /// CPU seconds per million handled messages (`None` before the first).
    pub cpu_seconds_per_million: Option<f64>,
    /// Busy (not parked) fraction of each active balancer worker over the
    /// last scaling interval; a spinning worker, or one waiting for a core,
    /// counts as busy.
    pub worker_busy: Vec<f64>,
    /// CPU each active balancer worker got: its thread's CPU time over its
    /// life (1.0 is a whole core); `None` where the platform does not say.
    pub worker_cpu: Vec<Option<f64>>,
    /// Raw and wire bytes of frames that left the process, when any did
    /// and a hive recorder saw them.
    pub wire_bytes: Option<(u64, u64)>,
    /// Heap allocations per handled message, with an allocation counter.
    pub allocations_per_message: Option<f64>,
    /// Hit ratio of each pool, by name; `None` for a pool nothing was
    /// pulled from yet (no ratio to show, rather than a made-up 100%).
    pub pool_hit_ratios: Vec<(String, Option<f64>)>,
    /// Messages accepted by senders.
    pub messages_sent: u64,
    /// Messages taken out of mailboxes.
    pub messages_delivered: u64,
    /// Messages that could not be delivered.
    pub messages_undeliverable: u64,
    /// Agents running now.
    pub agents_running: usize,
    /// Handler panics over the system's life.
    pub handler_panics: u64,
    /// Per-agent figures of named agents and those spawned with
    /// `metrics(true)` (bounded by `max_observed_agents`).
    pub agents: Vec<AgentReport>,
    /// The measured windows kept ([`SwarmSystem::history`](crate::SwarmSystem::history)):
    /// `(windows, bytes allocated for them, most bytes they may take)`; `None`
    /// without the `metrics` feature.
    pub history: Option<(usize, usize, usize)>,
}

/// One agent's figures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentReport {
    /// The agent.
    pub id: AgentId,
    /// Its name (or its id, for an unnamed agent with metrics on).
    pub label: String,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: usize,
    /// How long its oldest waiting message has waited.
    pub lag: Duration,
    /// Messages handled over its life.
    pub handled: u64,
    /// Messages handled per second over the ticker's last interval.
    pub handled_per_sec: f64,
    /// Handler run time percentiles, microseconds.
    pub handler_us: Percentiles,
    /// Handler panics.
    pub panics: u64,
    /// Restarts after panics.
    pub restarts: u64,
    /// Handlers the watchdog saw past their limit.
    pub overruns: u64,
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

impl SystemReport {
    /// Delivered over sent (1.0 when nothing was sent).
    pub fn delivery_success(&self) -> f64 {
        if self.messages_sent == 0 {
            1.0
        } else {
            self.messages_delivered as f64 / self.messages_sent as f64
        }
    }

    /// Fraction of wire bytes compression saved, when frames left the process.
    pub fn bandwidth_saved(&self) -> Option<f64> {
        self.wire_bytes
            .filter(|(raw, _)| *raw > 0)
            .map(|(raw, wire)| 1.0 - wire as f64 / raw as f64)
    }
}

pub(crate) fn measure(inner: &SystemInner) -> SystemReport {
    let b = inner.baselines;
    let uptime = b.started.elapsed().as_secs_f64().max(1e-9);
    let handled = inner.handled();
    let balancer = inner.balancer.stats();
    let lat = inner.latency_us.snapshot();
    let [p50, p95, p99, p999] = lat.quantiles([0.5, 0.95, 0.99, 0.999]);
    let rss = procstat::resident_bytes();
    let peak = procstat::peak_resident_bytes();
    let cpu = procstat::cpu_time()
        .zip(b.cpu)
        .map(|(now, then)| now.saturating_sub(then).as_secs_f64());
    let samples = lock(&inner.rss_samples).clone();
    let comm = inner.communicator.stats();
    let allocations = inner
        .allocations
        .zip(b.allocations)
        .map(|(counter, start)| counter().saturating_sub(start) as f64 / handled.max(1) as f64);
    SystemReport {
        optimizations: inner.optimizations,
        uptime_secs: uptime,
        messages_handled: handled,
        messages_per_sec: handled as f64 / uptime,
        tasks_completed: balancer.completed(),
        tasks_per_sec: balancer.completed() as f64 / uptime,
        latency_us: Percentiles {
            p50: p50 as f64,
            p95: p95 as f64,
            p99: p99 as f64,
            p999: p999 as f64,
        },
        latency_samples: lat.count(),
        rss_bytes: rss,
        rss_growth_bytes: rss.zip(b.rss).map(|(now, then)| now as i64 - then as i64),
        // The current reading counts too where the kernel keeps no peak:
        // memory may have grown since the last tick's sample.
        rss_peak_bytes: samples.iter().map(|(_, r)| *r).chain(rss).chain(peak).max(),
        rss_samples: samples,
        cpu_seconds: cpu,
        cpu_seconds_per_million: cpu
            .filter(|_| handled > 0)
            .map(|c| c / (handled as f64 / 1e6)),
        worker_busy: balancer
            .workers
            .iter()
            .filter(|w| w.active)
            .map(|w| w.busy_fraction)
            .collect(),
        worker_cpu: balancer
            .workers
            .iter()
            .filter(|w| w.active)
            .map(|w| w.cpu_load())
            .collect(),
        wire_bytes: wire_bytes(inner),
        allocations_per_message: allocations,
        pool_hit_ratios: pool_hit_ratios(inner),
        messages_sent: comm.sent,
        messages_delivered: comm.delivered,
        messages_undeliverable: comm.undeliverable,
        agents_running: inner.directory.len(),
        history: history(inner),
        handler_panics: inner.handler_panics.load(Ordering::Relaxed),
        agents: agent_reports(inner),
    }
}

fn agent_reports(inner: &SystemInner) -> Vec<AgentReport> {
    let mut rows: Vec<AgentReport> = inner
        .directory
        .all()
        .iter()
        .filter_map(|cell| {
            let o = cell.observed.as_ref()?;
            let [p50, p95, p99, p999] = o
                .latency_ns
                .snapshot()
                .quantiles([0.5, 0.95, 0.99, 0.999])
                .map(|ns| ns as f64 / 1000.0);
            let c = &cell.counters;
            Some(AgentReport {
                id: cell.id,
                label: o.label.to_string(),
                mailbox_depth: cell.probe.depth(),
                lag: cell.probe.lag(),
                handled: c.handled.load(Ordering::Relaxed),
                handled_per_sec: o.per_sec(),
                handler_us: Percentiles {
                    p50,
                    p95,
                    p99,
                    p999,
                },
                panics: c.panics.load(Ordering::Relaxed),
                restarts: c.restarts.load(Ordering::Relaxed),
                overruns: c.overruns.load(Ordering::Relaxed),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.label.cmp(&b.label));
    rows
}

#[cfg(feature = "metrics")]
fn wire_bytes(inner: &SystemInner) -> Option<(u64, u64)> {
    let snap = inner.recorder.as_ref()?.snapshot();
    let sum = |name: &str| -> u64 {
        snap.counters
            .iter()
            .filter(|c| c.name == name && c.labels.get("direction").is_some_and(|d| d == "encode"))
            .map(|c| c.value)
            .sum()
    };
    let (raw, wire) = (
        sum("hive_wire_raw_bytes_total"),
        sum("hive_wire_bytes_total"),
    );
    (raw > 0).then_some((raw, wire))
}

#[cfg(not(feature = "metrics"))]
fn wire_bytes(_: &SystemInner) -> Option<(u64, u64)> {
    None
}

#[cfg(feature = "mempool")]
fn pool_hit_ratios(inner: &SystemInner) -> Vec<(String, Option<f64>)> {
    let swarm = inner.pools.iter().flat_map(|pools| {
        let s = pools.stats();
        [s.strings, s.byte_buffers, s.uuid_lists]
    });
    let batches = inner.batch_pool.iter().map(hive_mempool::Pool::stats);
    batches
        .chain(swarm)
        .map(|p| {
            let used = p.hits + p.misses > 0;
            (p.name, used.then_some(p.hit_ratio))
        })
        .collect()
}

#[cfg(not(feature = "mempool"))]
fn pool_hit_ratios(_: &SystemInner) -> Vec<(String, Option<f64>)> {
    Vec::new()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl SystemReport {
    /// The seed design's rows: (metric, measured value as text).
    fn rows(&self) -> Vec<(&'static str, String)> {
        let na = || "n/a".to_string();
        vec![
            (
                "Swarm throughput",
                format!("{:.0} messages/s", self.messages_per_sec),
            ),
            (
                "Balancer tasks (agent runs + submitted work)",
                format!("{:.0} tasks/s", self.tasks_per_sec),
            ),
            ("Message latency P50 / P95 / P99", self.latency_text()),
            ("Memory (resident)", self.rss_bytes.map_or_else(na, mb)),
            (
                "Memory growth",
                self.rss_growth_bytes
                    .map_or_else(na, |g| format!("{:+.1} MB", g as f64 / 1e6)),
            ),
            (
                "CPU",
                self.cpu_seconds_per_million
                    .map_or_else(na, |c| format!("{c:.2} CPU s per million messages")),
            ),
            ("CPU load per worker", self.worker_load()),
            ("Bandwidth saved by compression", self.bandwidth_text()),
            (
                "Allocations per message",
                self.allocations_per_message.map_or_else(
                    || "n/a (no allocation counter)".into(),
                    |a| format!("{a:.3}"),
                ),
            ),
            ("Pool hit rates", self.pool_text()),
            ("Window history kept", self.history_text()),
            (
                "Delivery success",
                format!(
                    "{:.4}% ({} of {} sent; {} undeliverable)",
                    self.delivery_success() * 100.0,
                    self.messages_delivered,
                    self.messages_sent,
                    self.messages_undeliverable
                ),
            ),
        ]
    }

    fn history_text(&self) -> String {
        match self.history {
            Some((windows, bytes, most)) => format!(
                "{windows} windows, {:.1} KB (at most {:.1} KB)",
                bytes as f64 / 1e3,
                most as f64 / 1e3
            ),
            None => "n/a (metrics feature off)".into(),
        }
    }

    fn latency_text(&self) -> String {
        if self.latency_samples == 0 {
            return "n/a (no handled message timed yet)".into();
        }
        let l = &self.latency_us;
        format!("{:.0} / {:.0} / {:.0} us", l.p50, l.p95, l.p99)
    }

    /// Each worker's CPU share (not its busy fraction: a spinning worker
    /// is busy without doing work, and workers beyond the cores share them).
    fn worker_load(&self) -> String {
        if self.worker_cpu.iter().all(Option::is_none) {
            return "n/a (the platform does not report thread CPU time)".into();
        }
        self.worker_cpu
            .iter()
            .map(|c| c.map_or_else(|| "n/a".into(), |c| format!("{:.0}%", c * 100.0)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn bandwidth_text(&self) -> String {
        self.bandwidth_saved().map_or_else(
            || "n/a (no frames recorded: needs a transport and the installed hive recorder)".into(),
            |s| format!("{:.0}%", s * 100.0),
        )
    }

    fn pool_text(&self) -> String {
        if self.pool_hit_ratios.is_empty() {
            return "n/a (pools off)".into();
        }
        self.pool_hit_ratios
            .iter()
            .map(|(n, r)| match r {
                Some(r) => format!("{n} {:.1}%", r * 100.0),
                None => format!("{n} unused"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The per-agent table (named or opted-in agents).
    fn write_agents(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| Agent | Depth | Lag | Handled | Handled/s | Handler p50 / p99 | Panics | Restarts | Overruns |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
        for a in &self.agents {
            writeln!(
                f,
                "| {} | {} | {:.1} ms | {} | {:.0} | {:.0} / {:.0} us | {} | {} | {} |",
                a.label,
                a.mailbox_depth,
                a.lag.as_secs_f64() * 1e3,
                a.handled,
                a.handled_per_sec,
                a.handler_us.p50,
                a.handler_us.p99,
                a.panics,
                a.restarts,
                a.overruns
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for SystemReport {
    /// The seed design's table, with the measured value in each row, then
    /// the per-agent table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| Metric | Measured |")?;
        writeln!(f, "|---|---|")?;
        for (metric, value) in self.rows() {
            writeln!(f, "| {metric} | {value} |")?;
        }
        if !self.agents.is_empty() {
            writeln!(f)?;
            self.write_agents(f)?;
        }
        Ok(())
    }
}

/// The watch's history: windows kept, their bytes, the bound.
#[cfg(feature = "metrics")]
fn history(inner: &SystemInner) -> Option<(usize, usize, usize)> {
    let watch = inner.watch.as_ref()?;
    let kept = watch.history_len();
    Some((kept, watch.history_bytes(), watch.max_history_bytes()))
}

#[cfg(not(feature = "metrics"))]
fn history(_: &SystemInner) -> Option<(usize, usize, usize)> {
    None
}
