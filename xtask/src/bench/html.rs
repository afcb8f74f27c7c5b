//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! nothing fetched) with the summary, hive beside each anchor, the ablation
//! table, latency percentiles, memory over the run and earlier runs.

use std::fmt::Write as _;

use super::ablation::SwarmRun;
use super::collect::Entry;
use super::history::Report;
use super::machine::Machine;
use super::markdown::{
    ablation_cells, ablation_intro, components, entry_cells, ENTRY_HEADER, HOW_TO_READ,
};
use super::summary;
use super::svg::{self, escape, Series};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;\
font-size:13px;text-align:left;vertical-align:middle}th{background:#f3f3f3}\
td.yes{color:#2e7d32;font-weight:bold}td.NO{color:#c62828;font-weight:bold}\
.muted{color:#666;font-size:13px}";

/// The whole page. `history` holds earlier runs, oldest first.
pub(crate) fn render(
    machine: &Machine,
    entries: &[Entry],
    swarm: Option<&SwarmRun>,
    history: &[Report],
) -> String {
    let mut h = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hive benchmark report</title><style>{STYLE}</style></head><body>\
         <h1>hive benchmark report</h1><p class=\"muted\">{}</p><p>{}</p>",
        escape(&format!(
            "{} · {} · {} cores · {} · {} · commit {}{}",
            machine.timestamp,
            machine.cpu,
            machine.cores,
            machine.os,
            machine.rustc,
            machine.commit,
            if machine.quick {
                " · quick smoke run"
            } else {
                ""
            }
        )),
        escape(HOW_TO_READ).replace('`', "")
    );
    h.push_str("<h2>The seed design's table, measured</h2>");
    let rows: Vec<Vec<String>> = summary::lines(entries).into_iter().map(Vec::from).collect();
    h.push_str(&table(&summary::HEADER, &rows, None));

    h.push_str("<h2>hive beside each anchor</h2><p class=\"muted\">Top bar: hive (green: goal met, red: missed, blue: no goal). Bottom bar: the anchor.</p>");
    for component in components(entries) {
        let _ = write!(h, "<h3>{}</h3>", escape(component));
        let mine: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.component == component)
            .collect();
        let rows: Vec<Vec<String>> = mine.iter().map(|e| entry_cells(e)).collect();
        let charts: Vec<String> = mine
            .iter()
            .map(|e| svg::pair(e.hive, e.anchor_value, e.met()))
            .collect();
        h.push_str(&table(&ENTRY_HEADER, &rows, Some(&charts)));
    }

    if let Some(run) = swarm {
        h.push_str(&swarm_sections(run));
    }
    h.push_str(&history_section(entries, history));
    h.push_str("</body></html>\n");
    h
}

fn swarm_sections(run: &SwarmRun) -> String {
    let mut h = format!(
        "<h2>What each optimization buys</h2><p>{}</p>",
        escape(&ablation_intro(run))
    );
    let (header, rows) = ablation_cells(run);
    h.push_str(&table(&header, &rows, None));
    let groups: Vec<String> = run
        .ablation
        .iter()
        .map(|r| r.configuration.clone())
        .collect();
    let rate = Series {
        name: "messages/s",
        colour: "#1565c0",
        values: run.ablation.iter().map(|r| r.messages_per_sec).collect(),
    };
    h.push_str(&svg::grouped_bars(&groups, &[rate], "msg/s"));

    h.push_str("<h2>Message latency percentiles</h2><p class=\"muted\">Send to handler start, per configuration.</p>");
    let pick = |f: fn(&super::ablation::AblationRow) -> Option<f64>| -> Vec<f64> {
        run.ablation.iter().map(|r| f(r).unwrap_or(0.0)).collect()
    };
    let series = [
        Series {
            name: "p50",
            colour: "#90caf9",
            values: pick(|r| Some(r.latency_p50_us)),
        },
        Series {
            name: "p95",
            colour: "#42a5f5",
            values: pick(|r| r.latency_p95_us),
        },
        Series {
            name: "p99",
            colour: "#1565c0",
            values: pick(|r| Some(r.latency_p99_us)),
        },
        Series {
            name: "p99.9",
            colour: "#0d2c6b",
            values: pick(|r| r.latency_p999_us),
        },
    ];
    h.push_str(&svg::grouped_bars(&groups, &series, "us"));

    let l = &run.long_run;
    let _ = write!(
        h,
        "<h2>Memory over the run</h2><p>Resident memory of the long run ({} messages): \
         {:+.2} MB since start, {:+.2} MB after warm-up.</p>",
        l.messages, l.rss_growth_mb, l.rss_drift_after_warmup_mb
    );
    let points: Vec<(f64, f64)> = l
        .rss_samples
        .iter()
        .map(|(t, b)| (*t, *b as f64 / 1e6))
        .collect();
    h.push_str(&svg::line(&points, "s", "MB"));
    if !run.report_table.is_empty() {
        let _ = write!(
            h,
            "<h2>hive-core's report of the all-on run</h2><pre>{}</pre>",
            escape(&run.report_table)
        );
    }
    h
}

/// Each entry's ratio over earlier runs and this one.
fn history_section(entries: &[Entry], history: &[Report]) -> String {
    let mut h = String::from("<h2>Earlier runs</h2>");
    if history.is_empty() {
        h.push_str("<p class=\"muted\">No earlier runs in target/hive-bench/history yet.</p>");
        return h;
    }
    let shown = history
        .get(history.len().saturating_sub(8)..)
        .unwrap_or_default();
    let _ = write!(
        h,
        "<p class=\"muted\">Ratio (hive / anchor) of each comparison in the last {} runs and this one, oldest first.</p>",
        shown.len()
    );
    let mut header: Vec<String> = vec!["Comparison".into()];
    header.extend(shown.iter().map(|r| {
        let quick = if r.machine.quick { " (quick)" } else { "" };
        format!("{}{quick}", r.machine.timestamp)
    }));
    header.extend(["this run".into(), "trend".into()]);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let key = e.key();
            let past: Vec<Option<f64>> = shown
                .iter()
                .map(|r| {
                    r.entries
                        .iter()
                        .find(|p| p.key() == key)
                        .and_then(|p| p.ratio)
                })
                .collect();
            let mut row = vec![key];
            row.extend(
                past.iter()
                    .map(|r| r.map_or("-".into(), |r| format!("{r:.3}"))),
            );
            row.push(e.ratio.map_or("-".into(), |r| format!("{r:.3}")));
            let series: Vec<f64> = past
                .iter()
                .chain([&e.ratio])
                .map(|r| r.unwrap_or(f64::NAN))
                .collect();
            row.push(svg::sparkline(&series));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    h.push_str(&table_raw_last(&header, &rows));
    h
}

/// A table; `charts`, when given, adds a last column of raw SVG per row.
fn table(header: &[&str], rows: &[Vec<String>], charts: Option<&[String]>) -> String {
    let mut h = String::from("<table><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    if charts.is_some() {
        h.push_str("<th>hive / anchor</th>");
    }
    h.push_str("</tr>");
    for (i, r) in rows.iter().enumerate() {
        h.push_str("<tr>");
        for c in r {
            let class = if c == "yes" || c == "NO" {
                format!(" class=\"{c}\"")
            } else {
                String::new()
            };
            let _ = write!(h, "<td{class}>{}</td>", escape(c));
        }
        if let Some(svg) = charts.and_then(|c| c.get(i)) {
            let _ = write!(h, "<td>{svg}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

/// A table whose last cell in each row is raw SVG.
fn table_raw_last(header: &[&str], rows: &[Vec<String>]) -> String {
    let (cells, charts): (Vec<Vec<String>>, Vec<String>) = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let chart = r.pop().unwrap_or_default();
            (r, chart)
        })
        .unzip();
    let header = header
        .get(..header.len().saturating_sub(1))
        .unwrap_or_default();
    table(header, &cells, Some(&charts)).replace("<th>hive / anchor</th>", "<th>trend</th>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_escapes_text() {
        let machine = Machine {
            cpu: "cpu".into(),
            cores: 2,
            memory_gib: Some(1.0),
            os: "os".into(),
            rustc: "rustc".into(),
            commit: "abc".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            quick: true,
        };
        let entry = Entry {
            component: "hive-types".into(),
            case: "id <creation>".into(),
            unit: "ns".into(),
            higher_is_better: false,
            hive: 7.0,
            anchor: "uuid".into(),
            anchor_value: 350.0,
            ratio: Some(0.02),
            goal: Some(0.2),
        };
        let past = Report {
            machine: machine.clone(),
            entries: vec![entry.clone()],
        };
        let page = render(&machine, &[entry], None, &[past]);
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(
            !page.contains("<script") && !page.contains("http://") && !page.contains("https://")
        );
        assert!(page.contains("id &lt;creation&gt;"));
        assert!(
            page.contains("<td class=\"yes\">yes</td>"),
            "the goal is met"
        );
        assert!(page.contains("<h2>Earlier runs</h2>") && page.contains("<th>trend</th>"));
    }
}
