//! `report.md`: the summary, every comparison by component, the ablation
//! table and the long run's memory, as Markdown.

use std::fmt::Write as _;

use super::ablation::SwarmRun;
use super::collect::Entry;
use super::machine::Machine;
use super::summary::{self, mark, number};

/// How to read the report; shared by the Markdown and HTML versions.
pub(crate) const HOW_TO_READ: &str = "Each entry compares hive's median with an anchor's median \
from the same run on the same machine. `ratio` is hive / anchor; `goal` is the ratio the issue \
asked for: at least the goal when higher is better (throughput), at most when lower is better \
(time, memory). Entries without a goal are shown for context. Absolute figures move with the \
machine; ratios are what to compare between runs.";

/// The Markdown report.
pub(crate) fn render(machine: &Machine, entries: &[Entry], swarm: Option<&SwarmRun>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# hive benchmark report\n");
    let _ = writeln!(
        md,
        "{} on {} ({} cores, {} GiB, {}), {}, commit {}{}.\n",
        machine.timestamp,
        machine.cpu,
        machine.cores,
        machine.memory_gib.map_or("?".into(), |g| g.to_string()),
        machine.os,
        machine.rustc,
        machine.commit,
        if machine.quick {
            ", **quick smoke run**"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "{HOW_TO_READ}\n");
    let met = entries.iter().filter(|e| e.met() == Some(true)).count();
    let with_goal = entries.iter().filter(|e| e.met().is_some()).count();
    let _ = writeln!(md, "Goals met: **{met} of {with_goal}**.\n");

    let _ = writeln!(md, "## The seed design's table, measured\n");
    let rows: Vec<Vec<String>> = summary::lines(entries).into_iter().map(Vec::from).collect();
    md.push_str(&summary::table(&summary::HEADER, &rows));

    for component in components(entries) {
        let _ = writeln!(md, "\n## {component}\n");
        let rows: Vec<Vec<String>> = entries
            .iter()
            .filter(|e| e.component == component)
            .map(entry_cells)
            .collect();
        md.push_str(&summary::table(&ENTRY_HEADER, &rows));
    }

    if let Some(run) = swarm {
        md.push_str(&ablation(run));
    }
    md
}

/// Components in order of first appearance.
pub(crate) fn components(entries: &[Entry]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for e in entries {
        if !out.contains(&e.component.as_str()) {
            out.push(&e.component);
        }
    }
    out
}

/// The columns of [`entry_cells`].
pub(crate) const ENTRY_HEADER: [&str; 8] = [
    "Case",
    "Unit",
    "hive",
    "Anchor",
    "Anchor value",
    "Ratio",
    "Goal",
    "Met",
];

/// The cells of one entry: case, unit, hive, anchor, value, ratio, goal, met.
pub(crate) fn entry_cells(e: &Entry) -> Vec<String> {
    vec![
        e.case.clone(),
        e.unit.clone(),
        number(e.hive),
        e.anchor.clone(),
        number(e.anchor_value),
        e.ratio.map_or("-".into(), |r| format!("{r:.3}")),
        e.goal.map_or("-".into(), |g| {
            let at = if e.higher_is_better { ">=" } else { "<=" };
            format!("{at} {g:.3}")
        }),
        mark(e.met()),
    ]
}

/// What the ablation table is, for both reports.
pub(crate) fn ablation_intro(run: &SwarmRun) -> String {
    format!(
        "The same end-to-end run ({} tasks, two messages each) with every optimization on, then \
         each turned off in turn, each configuration in a fresh process (so resident memory is its \
         own). The TCP rows ({} tasks) put the workers in a second system behind a loopback link.",
        run.tasks, run.tcp_tasks
    )
}

/// The ablation rows' cells, with the header.
pub(crate) fn ablation_cells(run: &SwarmRun) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "Configuration",
        "msg/s",
        "tasks/s",
        "p50 us",
        "p99 us",
        "RSS MB",
        "CPU s / M msg",
        "allocs/msg",
        "bandwidth saved",
        "delivered",
    ];
    let opt = |x: Option<f64>| x.map_or("-".into(), number);
    let rows = run
        .ablation
        .iter()
        .map(|r| {
            vec![
                r.configuration.clone(),
                number(r.messages_per_sec),
                opt(r.tasks_per_sec),
                number(r.latency_p50_us),
                number(r.latency_p99_us),
                opt(r.rss_mb),
                opt(r.cpu_s_per_million),
                opt(r.allocations_per_message),
                r.bandwidth_saved
                    .map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
                format!("{:.2}%", r.delivery_success * 100.0),
            ]
        })
        .collect();
    (header, rows)
}

fn ablation(run: &SwarmRun) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## What each optimization buys\n\n{}\n",
        ablation_intro(run)
    );
    let (header, rows) = ablation_cells(run);
    md.push_str(&summary::table(&header, &rows));
    let l = &run.long_run;
    let peak = l.rss_samples.iter().map(|s| s.1).max().unwrap_or(0);
    let _ = writeln!(
        md,
        "\n## Memory over the long run\n\n{} messages: resident memory grew {:+.2} MB since start \
         and {:+.2} MB after warm-up (the first fifth of the run); peak {:.1} MB over {} samples.",
        l.messages,
        l.rss_growth_mb,
        l.rss_drift_after_warmup_mb,
        peak as f64 / 1e6,
        l.rss_samples.len()
    );
    if !run.report_table.is_empty() {
        let _ = writeln!(
            md,
            "\n## hive-core's report of the all-on run\n\n```text\n{}\n```",
            run.report_table.trim_end()
        );
    }
    md
}
