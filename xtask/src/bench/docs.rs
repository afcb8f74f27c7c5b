//! The READMEs' "Measured" tables, written from the last full report
//! (`cargo xtask bench --update-docs`) and checked by a test: no figure in
//! a README is typed by hand.
//!
//! A README asks for a table with a block:
//!
//! ```text
//! <!-- measured: hive-metrics -->
//! <!-- /measured -->
//! ```
//!
//! `--update-docs` fills it with that component's entries of
//! `target/hive-bench/report.json` (several components: `hive-core, hive-types`),
//! under a line naming the run (date, commit, machine). A `--quick` report
//! never goes into a README.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::collect::Entry;
use super::machine::Machine;
use super::summary::{mark, number, table};

const BEGIN: &str = "<!-- measured: ";
const END: &str = "<!-- /measured -->";
/// What the first line of a filled block starts with.
const FROM: &str = "From the full `cargo xtask bench` of ";

/// The columns of a README table.
pub(crate) const HEADER: [&str; 6] = ["case", "hive", "anchor", "ratio", "goal", "met"];

/// The READMEs that may hold blocks: the workspace's and each crate's.
pub(crate) fn readmes(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![root.join("README.md")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("README.md")))
        .filter(|p| p.exists())
        .collect();
    crates.sort();
    out.extend(crates);
    Ok(out)
}

/// A block: where its text starts and ends in the README, and its
/// components.
struct Block {
    components: Vec<String>,
    /// Byte range of the text between the markers.
    body: std::ops::Range<usize>,
}

fn blocks(text: &str) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(at) = text.get(rest..).and_then(|t| t.find(BEGIN)) {
        let start = rest + at;
        let line_end = text
            .get(start..)
            .and_then(|t| t.find("-->"))
            .map(|e| start + e)
            .context("a measured block's opening marker is not closed with -->")?;
        let names = text.get(start + BEGIN.len()..line_end).unwrap_or_default();
        let components: Vec<String> = names
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        ensure!(
            !components.is_empty(),
            "a measured block names no component"
        );
        let body_start = line_end + "-->".len();
        let end = text
            .get(body_start..)
            .and_then(|t| t.find(END))
            .map(|e| body_start + e)
            .with_context(|| format!("the block for {names} has no {END}"))?;
        let body = text.get(body_start..end).unwrap_or_default();
        ensure!(
            !body.contains(BEGIN),
            "the block for {names} opens another before it ends"
        );
        out.push(Block {
            components,
            body: body_start..end,
        });
        rest = end + END.len();
    }
    Ok(out)
}

/// The cells of one entry in a README.
fn cells(e: &Entry) -> Vec<String> {
    let unit = |v: f64| match e.unit.as_str() {
        "" | "x" => number(v),
        "ns" if v >= 1e6 => format!("{} ms", number(v / 1e6)),
        "ns" if v >= 1e3 => format!("{} µs", number(v / 1e3)),
        unit => format!("{} {unit}", number(v)),
    };
    let anchor = match e.anchor.starts_with("goal:") {
        true => e.anchor.clone(),
        false => format!("{} {}", e.anchor, unit(e.anchor_value)),
    };
    vec![
        e.case.clone(),
        unit(e.hive),
        anchor,
        e.ratio
            .map_or("-".into(), |r| match r.abs() < 0.001 && r != 0.0 {
                true => format!("{r:.1e}"),
                false => format!("{r:.3}"),
            }),
        e.goal.map_or("-".into(), |g| {
            let at = if e.higher_is_better { ">=" } else { "<=" };
            format!("{at} {g}")
        }),
        mark(e.met()),
    ]
}

/// A block's text for `components`.
fn body(machine: &Machine, entries: &[Entry], components: &[String]) -> Result<String> {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| components.contains(&e.component))
        .map(cells)
        .collect();
    ensure!(
        !rows.is_empty(),
        "the report has no entry for {}",
        components.join(", ")
    );
    Ok(format!(
        "\n{FROM}{}, commit {}, on {} ({} cores); ratios are hive / anchor, \
         `target/hive-bench/report.md` has every case.\n\n{}",
        machine.timestamp,
        machine.commit,
        machine.cpu,
        machine.cores,
        table(&HEADER, &rows)
    ))
}

/// `text` with every block filled from the report.
pub(crate) fn fill(text: &str, machine: &Machine, entries: &[Entry]) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for block in blocks(text)? {
        out.push_str(text.get(copied..block.body.start).unwrap_or_default());
        out.push_str(&body(machine, entries, &block.components)?);
        copied = block.body.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Ok(out)
}

/// Fills every README's blocks from `report.json`; refuses a quick run.
pub(crate) fn update(root: &Path, report: &Path) -> Result<()> {
    let text = std::fs::read_to_string(report).with_context(|| {
        format!(
            "reading {} (run a full `cargo xtask bench` first)",
            report.display()
        )
    })?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let part = |key: &str| doc.get(key).cloned().unwrap_or_default();
    let machine: Machine = serde_json::from_value(part("machine"))?;
    let entries: Vec<Entry> = serde_json::from_value(part("entries"))?;
    if machine.quick {
        bail!(
            "{} is from a --quick run: its figures do not go into READMEs",
            report.display()
        );
    }
    for path in readmes(root)? {
        let old = std::fs::read_to_string(&path)?;
        let new = fill(&old, &machine, &entries).with_context(|| path.display().to_string())?;
        check(&new).with_context(|| path.display().to_string())?;
        if new != old {
            std::fs::write(&path, new)?;
            println!("updated {}", path.display());
        }
    }
    Ok(())
}

/// Checks a README: blocks well formed, each filled with a table of the
/// README columns under the line naming its run, and no "Measured"
/// heading whose section has figures outside a block.
pub(crate) fn check(text: &str) -> Result<()> {
    for block in blocks(text)? {
        let body = text.get(block.body.clone()).unwrap_or_default();
        let names = block.components.join(", ");
        let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
        let from = lines.next().unwrap_or_default();
        ensure!(
            from.starts_with(FROM) && from.contains(", commit "),
            "the block for {names} is not filled (`cargo xtask bench --update-docs`)"
        );
        let header = lines.next().unwrap_or_default();
        let expected = format!("| {} |", HEADER.join(" | "));
        ensure!(
            header.split_whitespace().collect::<String>()
                == expected.split_whitespace().collect::<String>(),
            "the block for {names} has header {header:?}"
        );
        ensure!(
            lines.next().is_some_and(|l| l.starts_with("|-")),
            "the block for {names} has no separator row"
        );
        let mut rows = 0;
        for row in lines {
            let cells = row.replace("\\|", "").matches('|').count();
            ensure!(
                cells == HEADER.len() + 1,
                "the block for {names} has a row of {} cells: {row}",
                cells.saturating_sub(1)
            );
            rows += 1;
        }
        ensure!(rows > 0, "the block for {names} has no rows");
    }
    for section in text.split("\n#").skip(1) {
        let heading = section.lines().next().unwrap_or_default();
        if !heading.to_lowercase().contains("measured") {
            continue;
        }
        let outside: String =
            blocks(section)?
                .iter()
                .rev()
                .fold(section.to_string(), |mut s, b| {
                    s.replace_range(b.body.clone(), "");
                    s
                });
        ensure!(
            !outside.lines().any(|l| l.trim_start().starts_with('|')),
            "section {heading:?} has a table outside a measured block"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            memory_gib: Some(24.0),
            os: "Linux".into(),
            rustc: "rustc 1.95.0".into(),
            commit: "abc1234".into(),
            timestamp: "2026-12-01T12:00:00Z".into(),
            quick: false,
        }
    }

    fn entry(component: &str, case: &str) -> Entry {
        Entry {
            component: component.into(),
            case: case.into(),
            unit: "ns".into(),
            higher_is_better: false,
            hive: 2.0,
            anchor: "metrics-exporter-prometheus".into(),
            anchor_value: 4.0,
            ratio: Some(0.5),
            goal: Some(1.0),
        }
    }

    const README: &str =
        "# x\n\n## Measured\n\n<!-- measured: hive-metrics -->\n<!-- /measured -->\n\ntext after\n";

    #[test]
    fn a_block_is_filled_from_the_report_and_then_checks() {
        let entries = [
            entry("hive-metrics", "counter | handle"),
            entry("hive-core", "other"),
        ];
        assert!(check(README).is_err(), "an empty block fails the check");
        let filled = fill(README, &machine(), &entries).unwrap();
        check(&filled).unwrap();
        assert!(filled.contains("abc1234") && filled.contains("2026-12-01T12:00:00Z"));
        assert!(filled.contains("| 2.00 ns"), "{filled}");
        assert!(filled.contains("counter \\| handle"), "{filled}");
        assert!(!filled.contains("other"), "another component's entry");
        assert!(filled.ends_with("<!-- /measured -->\n\ntext after\n"));
        assert_eq!(
            fill(&filled, &machine(), &entries).unwrap(),
            filled,
            "idempotent"
        );
    }

    #[test]
    fn hand_tables_and_broken_blocks_are_refused() {
        let hand = "# x\n\n## Measured (one run)\n\n| case | hive |\n|---|---|\n| a | 1 ns |\n";
        assert!(check(hand).unwrap_err().to_string().contains("outside"));
        let unclosed = "<!-- measured: hive-core -->\nno end\n";
        assert!(check(unclosed).is_err());
        let nameless = "<!-- measured:  -->\n<!-- /measured -->\n";
        assert!(check(nameless).is_err());
        let filled = fill(README, &machine(), &[entry("hive-metrics", "c")]).unwrap();
        let short_row = filled.replace("| yes", "");
        assert!(check(&short_row).is_err(), "{short_row}");
        assert!(
            fill(README, &machine(), &[entry("hive-core", "c")]).is_err(),
            "no entry"
        );
    }

    /// The tidy check on the real READMEs (rust-analyzer style): every
    /// figure under a "Measured" heading comes from a full report.
    #[test]
    fn the_readmes_measured_tables_come_from_a_report() {
        for path in readmes(&crate::project_root()).unwrap() {
            let text = std::fs::read_to_string(&path).unwrap();
            check(&text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        }
    }
}
