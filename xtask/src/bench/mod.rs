//! `cargo xtask bench`: runs every comparison benchmark and the end-to-end
//! swarm run in release mode, then writes `target/hive-bench/report.json`,
//! `report.md` and `report.html` and prints the seed design's table.

mod ablation;
mod collect;
mod docs;
mod history;
mod html;
mod machine;
mod manifest;
mod markdown;
mod progress;
mod schema;
mod summary;
mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use hive_metrics::{Baseline, RegressionDetector, Thresholds};

use ablation::SwarmRun;
use collect::Entry;
use machine::Machine;

pub(crate) const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--save-baseline NAME] [--baseline NAME] [--report-only]
                         [--update-docs]

  --quick               short smoke run (under 3 minutes on 2 cores)
  --save-baseline NAME  save this run's ratios as baseline NAME
  --baseline NAME       compare this run's ratios with baseline NAME; exits
                        non-zero on a regression (hive-metrics thresholds:
                        a higher-is-better ratio down 10%, a lower-is-better
                        ratio up 20%)
  --report-only         rebuild the reports from the last run's results
  --update-docs         fill the READMEs' measured blocks from this full run's
                        report (with --report-only: from the last report.json)
";

/// The command line of `cargo xtask bench`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Options {
    pub quick: bool,
    pub save_baseline: Option<String>,
    pub baseline: Option<String>,
    pub report_only: bool,
    pub update_docs: bool,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut name = || -> Result<String> {
                let n = it
                    .next()
                    .with_context(|| format!("{arg} needs a name\n\n{USAGE}"))?;
                if n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    bail!("baseline name {n:?}: use letters, digits, '-', '_' and '.'");
                }
                Ok(n.clone())
            };
            match arg.as_str() {
                "--quick" => o.quick = true,
                "--report-only" => o.report_only = true,
                "--update-docs" => o.update_docs = true,
                "--save-baseline" => o.save_baseline = Some(name()?),
                "--baseline" => o.baseline = Some(name()?),
                other => bail!("unknown option `{other}`\n\n{USAGE}"),
            }
        }
        if o.quick && o.update_docs {
            bail!("--update-docs takes a full run's figures, not --quick's");
        }
        Ok(o)
    }
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let root = crate::project_root();
    let target = target_dir(&root);
    let out = target.join("hive-bench");
    if opts.update_docs && opts.report_only {
        // The last report as it was written, with the machine and commit
        // of its run.
        return docs::update(&root, &out.join("report.json"));
    }
    let started = SystemTime::now();
    if !opts.report_only {
        progress::run_benches(&root, &out, opts.quick)?;
    }
    let since = (!opts.report_only).then_some(started);
    let medians = collect::criterion_medians(&target.join("criterion"), since)?;
    let extras = collect::extras(&out.join("extra.jsonl"))?;
    let (entries, missing) = collect::entries(&medians, extras);
    let swarm = SwarmRun::load(&out.join("swarm.json"))?;
    let machine = Machine::detect(opts.quick);

    let report_path = write_reports(&out, &machine, &entries, swarm.as_ref())?;
    print_summary(&entries, &report_path);
    for c in &missing {
        eprintln!(
            "missing: no result for {} / {} ({})",
            c.component, c.case, c.hive
        );
    }
    if !missing.is_empty() && !opts.report_only {
        bail!(
            "{} comparisons have no result; see target/hive-bench/logs",
            missing.len()
        );
    }
    let baselines = out.join("baselines");
    if let Some(name) = &opts.baseline {
        compare_with_baseline(&baselines, name, &entries)?;
    }
    if opts.update_docs {
        docs::update(&root, &out.join("report.json"))?;
    }
    if let Some(name) = &opts.save_baseline {
        let path = baselines.join(format!("{name}.json"));
        baseline_of(name, &entries).save(&path)?;
        println!("saved baseline `{name}` to {}", path.display());
    }
    Ok(())
}

/// Writes the three reports and the history copy; checks `report.json`
/// against the schema as written. Returns the directory.
fn write_reports(
    out: &Path,
    machine: &Machine,
    entries: &[Entry],
    swarm: Option<&SwarmRun>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let history_dir = out.join("history");
    let history = history::load(&history_dir);
    let json = report_json(machine, entries)?;
    let json_path = out.join("report.json");
    std::fs::write(&json_path, &json)?;
    schema::validate(&std::fs::read_to_string(&json_path)?)
        .with_context(|| format!("{} does not match the report schema", json_path.display()))?;
    std::fs::write(
        out.join("report.md"),
        markdown::render(machine, entries, swarm),
    )?;
    std::fs::write(
        out.join("report.html"),
        html::render(machine, entries, swarm, &history),
    )?;
    history::save(&history_dir, &machine.timestamp, &json)?;
    Ok(out.to_path_buf())
}

/// `{"machine": ..., "entries": [...]}`.
fn report_json(machine: &Machine, entries: &[Entry]) -> Result<String> {
    let doc = serde_json::json!({ "machine": machine, "entries": entries });
    Ok(serde_json::to_string_pretty(&doc)?)
}

fn print_summary(entries: &[Entry], out: &Path) {
    println!("\nThe seed design's table, measured (median of this run):\n");
    let rows: Vec<Vec<String>> = summary::lines(entries).into_iter().map(Vec::from).collect();
    print!("{}", summary::table(&summary::HEADER, &rows));
    println!("\nEvery comparison (ratio = hive / anchor, same run):\n");
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut cells = vec![e.component.clone()];
            cells.extend(markdown::entry_cells(e));
            cells
        })
        .collect();
    print!(
        "{}",
        summary::table(
            &[&["Component"][..], &markdown::ENTRY_HEADER[..]].concat(),
            &rows
        )
    );
    let met = entries.iter().filter(|e| e.met() == Some(true)).count();
    let with_goal = entries.iter().filter(|e| e.met().is_some()).count();
    println!("\ngoals met: {met} of {with_goal}");
    println!(
        "reports: {0}/report.json, {0}/report.md, {0}/report.html",
        out.display()
    );
}

/// The run's ratios as a hive-metrics baseline, keyed by comparison.
/// Ratios at or below zero (a memory drift that came out negative) are left
/// out: a relative threshold means nothing for them.
fn baseline_of(name: &str, entries: &[Entry]) -> Baseline {
    let mut baseline = Baseline::new(name);
    for e in entries {
        if let Some(ratio) = e.ratio.filter(|r| *r > 0.0) {
            baseline.insert(e.key(), ratio, e.higher_is_better, "ratio");
        }
    }
    baseline
}

/// Compares the run's ratios with baseline `name`; an error on regression.
fn compare_with_baseline(dir: &Path, name: &str, entries: &[Entry]) -> Result<()> {
    let path = dir.join(format!("{name}.json"));
    let baseline = Baseline::load(&path).with_context(|| {
        format!(
            "no baseline `{name}` at {}; save one with --save-baseline {name}",
            path.display()
        )
    })?;
    let current: BTreeMap<String, f64> = entries
        .iter()
        .filter_map(|e| e.ratio.map(|r| (e.key(), r)))
        .collect();
    let alerts = RegressionDetector::compare(&baseline, &current, &Thresholds::default());
    let compared = baseline
        .entries
        .keys()
        .filter(|k| current.contains_key(*k))
        .count();
    for alert in &alerts {
        eprintln!("{alert}");
    }
    if alerts.is_empty() {
        println!("baseline `{name}`: {compared} ratios compared, no regression");
        Ok(())
    } else {
        bail!(
            "{} of {compared} ratios regressed against baseline `{name}`",
            alerts.len()
        )
    }
}

#[cfg(test)]
mod tests;
