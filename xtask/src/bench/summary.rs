//! The seed design's summary table, with the measured figure and the goal of
//! each row, from the end-to-end entries of the run.

use super::collect::Entry;

/// How a row shows its entry.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Show {
    /// The measured value itself.
    Value,
    /// The change an optimization makes: `hive` (on) against `anchor` (off).
    Change,
}

/// One row of the seed design's table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub metric: &'static str,
    /// What the seed design claimed.
    pub document: &'static str,
    /// The `case` of the hive-core entry that measures it.
    pub case: &'static str,
    show: Show,
}

/// The rows, in the seed design's order; each `case` is written by
/// `benches/benches/swarm.rs` (a test checks they agree).
pub(crate) const ROWS: [Row; 12] = [
    row(
        "Swarm throughput",
        "476 -> 700+ ops/s (862 claimed)",
        "end-to-end swarm throughput",
        Show::Value,
    ),
    row(
        "Throughput from batching",
        "+47%",
        "throughput with batching (document: +47%)",
        Show::Change,
    ),
    row(
        "Task processing",
        "877 ops/s claimed",
        "end-to-end task throughput",
        Show::Value,
    ),
    row(
        "Memory usage",
        "50 MB -> 35 MB",
        "resident memory, steady state",
        Show::Value,
    ),
    row(
        "Memory from pools",
        "-30%",
        "resident memory with pools (document: -30%)",
        Show::Change,
    ),
    row(
        "Memory growth",
        "0.00 MB claimed",
        "resident memory growth after warm-up over the long run",
        Show::Value,
    ),
    row(
        "CPU from load balancing, 50% load",
        "load avg 4.35 -> <3.0 (-31%)",
        "CPU per million messages at 50% of capacity, load-aware on (document: -31%)",
        Show::Change,
    ),
    row(
        "CPU from load balancing, 90% load",
        "load avg 4.35 -> <3.0 (-31%)",
        "CPU per million messages at 90% of capacity, load-aware on (document: -31%)",
        Show::Change,
    ),
    row(
        "Message latency (p99)",
        "~120 ms -> <100 ms",
        "P99 message latency under saturation",
        Show::Value,
    ),
    row(
        "Bandwidth usage",
        "-30-50% (compression)",
        "bandwidth saved by compression over TCP (document: 30-50%)",
        Show::Value,
    ),
    row(
        "Memory allocations",
        "-70%+ (object reuse)",
        "allocations per message with pools (document: -70%)",
        Show::Change,
    ),
    row(
        "System reliability",
        "100% success",
        "delivery success",
        Show::Value,
    ),
];

const fn row(metric: &'static str, document: &'static str, case: &'static str, show: Show) -> Row {
    Row {
        metric,
        document,
        case,
        show,
    }
}

/// The columns of a rendered row.
pub(crate) const HEADER: [&str; 5] = ["Metric", "Document", "Measured", "Goal", "Met"];

/// A rendered row: metric, document, measured, goal, met.
pub(crate) type Line = [String; 5];

/// The table's rows for `entries`; rows whose entry is missing say so.
pub(crate) fn lines(entries: &[Entry]) -> Vec<Line> {
    ROWS.iter()
        .map(|r| {
            let entry = entries
                .iter()
                .find(|e| e.component == "hive-core" && e.case == r.case);
            let (measured, goal, met) = match entry {
                Some(e) => (measured(r.show, e), goal(r.show, e), mark(e.met())),
                None => ("not measured".into(), "-".into(), "-".into()),
            };
            [r.metric.into(), r.document.into(), measured, goal, met]
        })
        .collect()
}

fn measured(show: Show, e: &Entry) -> String {
    match (show, e.ratio) {
        (Show::Change, Some(ratio)) => format!(
            "{:+.0}% ({} vs {} {} with it off)",
            (ratio - 1.0) * 100.0,
            number(e.hive),
            number(e.anchor_value),
            e.unit
        ),
        _ => format!("{} {}", number(e.hive), e.unit),
    }
}

fn goal(show: Show, e: &Entry) -> String {
    let Some(goal) = e.goal else {
        return "-".into();
    };
    let at_least = if e.higher_is_better { ">=" } else { "<=" };
    match show {
        Show::Change => format!("{at_least} {:+.0}%", (goal - 1.0) * 100.0),
        Show::Value => {
            let target = number(goal * e.anchor_value);
            format!("{at_least} {target} {}", e.unit)
        }
    }
}

/// `yes`, `NO` or `-` (no goal).
pub(crate) fn mark(met: Option<bool>) -> String {
    match met {
        Some(true) => "yes".into(),
        Some(false) => "NO".into(),
        None => "-".into(),
    }
}

/// A figure with three significant digits, thousands as `k` and `M`.
pub(crate) fn number(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "n/a".into()
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// `rows` under `header` as an aligned table: Markdown, and readable as
/// plain text in a terminal.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.replace('|', "\\|")).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.to_vec());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(case: &str, hive: f64, anchor_value: f64, goal: f64, higher: bool) -> Entry {
        Entry {
            component: "hive-core".into(),
            case: case.into(),
            unit: "msg/s".into(),
            higher_is_better: higher,
            hive,
            anchor: "x".into(),
            anchor_value,
            ratio: Some(hive / anchor_value),
            goal: Some(goal),
        }
    }

    #[test]
    fn values_and_changes_render_with_their_goals() {
        let entries = [
            entry("end-to-end swarm throughput", 2.5e6, 1e6, 1.0, true),
            entry(
                "throughput with batching (document: +47%)",
                2e6,
                1e6,
                1.47,
                true,
            ),
        ];
        let lines = lines(&entries);
        assert_eq!(lines[0][2], "2.50M msg/s");
        assert_eq!(lines[0][3], ">= 1.00M msg/s");
        assert_eq!(lines[0][4], "yes");
        assert_eq!(lines[1][2], "+100% (2.00M vs 1.00M msg/s with it off)");
        assert_eq!(lines[1][3], ">= +47%");
        assert_eq!(lines[2][2], "not measured");
    }

    #[test]
    fn a_missed_goal_is_marked() {
        let e = entry("resident memory, steady state", 30.0, 20.0, 1.0, false);
        assert_eq!(lines(&[e])[3][4], "NO");
    }

    #[test]
    fn every_row_names_a_case_the_swarm_bench_writes() {
        let bench = std::fs::read_to_string(crate::project_root().join("benches/benches/swarm.rs"))
            .unwrap();
        for r in ROWS {
            assert!(
                bench.contains(&format!("{:?}", r.case)),
                "{:?} not written by the swarm bench",
                r.case
            );
        }
    }
}
