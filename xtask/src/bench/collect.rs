//! Reads a run's results: criterion's medians (through the manifest) and
//! the extra measurements the benches wrote, as report entries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::{Anchor, Comparison, Goal, Measure};

/// One comparison in `report.json`; the keys are the report's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// Crate name, e.g. `hive-messaging`.
    pub component: String,
    /// What was measured.
    pub case: String,
    /// Unit of `hive` and `anchor_value`.
    pub unit: String,
    pub higher_is_better: bool,
    /// hive's median.
    pub hive: f64,
    /// Name of the anchor (`goal: ...` for a fixed goal).
    pub anchor: String,
    /// The anchor's median.
    pub anchor_value: f64,
    /// `hive / anchor_value`.
    pub ratio: Option<f64>,
    /// The ratio the issue asks for (`null`: shown for context).
    pub goal: Option<f64>,
}

impl Entry {
    /// Whether the goal is met: `None` without a goal or a ratio.
    pub(crate) fn met(&self) -> Option<bool> {
        let (ratio, goal) = (self.ratio?, self.goal?);
        Some(if self.higher_is_better {
            ratio >= goal
        } else {
            ratio <= goal
        })
    }

    /// A key naming the comparison across runs.
    pub(crate) fn key(&self) -> String {
        format!("{} / {} / vs {}", self.component, self.case, self.anchor)
    }
}

/// A criterion result: median time per iteration and declared throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Median {
    pub ns: f64,
    pub elements: Option<f64>,
    pub bytes: Option<f64>,
}

impl Median {
    fn value(&self, measure: Measure) -> Option<f64> {
        match measure {
            Measure::Time => Some(self.ns),
            Measure::Rate(_) if self.ns <= 0.0 => None,
            Measure::Rate(_) => match (self.elements, self.bytes) {
                (Some(n), _) => Some(n * 1e9 / self.ns),
                (None, Some(b)) => Some(b * 1e3 / self.ns), // MB/s
                (None, None) => None,
            },
        }
    }
}

#[derive(Deserialize)]
struct BenchmarkJson {
    full_id: String,
    throughput: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: PointEstimate,
}

#[derive(Deserialize)]
struct PointEstimate {
    point_estimate: f64,
}

/// Criterion's results under `criterion_dir` written since `since` (older
/// ones are a previous run's), by full id.
pub(crate) fn criterion_medians(
    criterion_dir: &Path,
    since: Option<SystemTime>,
) -> Result<BTreeMap<String, Median>> {
    let mut out = BTreeMap::new();
    if !criterion_dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![criterion_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = item?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some((id, median)) = read_result(&path, since)? {
                        out.insert(id, median);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    Ok(out)
}

fn read_result(dir: &Path, since: Option<SystemTime>) -> Result<Option<(String, Median)>> {
    let (bench, estimates) = (dir.join("benchmark.json"), dir.join("estimates.json"));
    if !bench.exists() || !estimates.exists() {
        return Ok(None);
    }
    if let Some(since) = since {
        if std::fs::metadata(&estimates)?.modified()? < since {
            return Ok(None);
        }
    }
    let b: BenchmarkJson = serde_json::from_str(&std::fs::read_to_string(&bench)?)
        .with_context(|| format!("parsing {}", bench.display()))?;
    let e: EstimatesJson = serde_json::from_str(&std::fs::read_to_string(&estimates)?)
        .with_context(|| format!("parsing {}", estimates.display()))?;
    let throughput = b.throughput.unwrap_or_default();
    let median = Median {
        ns: e.median.point_estimate,
        elements: throughput.get("Elements").copied(),
        bytes: throughput.get("Bytes").copied(),
    };
    Ok(Some((b.full_id, median)))
}

/// The entry of `c`, or `None` when a result it needs is missing.
pub(crate) fn compare(c: &Comparison, medians: &BTreeMap<String, Median>) -> Option<Entry> {
    let hive = medians.get(c.hive)?.value(c.measure)?;
    let (anchor, anchor_value) = match c.anchor {
        Anchor::Bench(id, name) => (name, medians.get(id)?.value(c.measure)?),
        Anchor::Fixed(name, value) => (name, value),
    };
    let goal = match c.goal {
        Goal::None => None,
        Goal::Ratio(r) => Some(r),
        Goal::PlusNanos(n) => Some((anchor_value + n) / anchor_value),
    };
    let (unit, higher_is_better) = match c.measure {
        Measure::Time => ("ns", false),
        Measure::Rate(unit) => (unit, true),
    };
    Some(Entry {
        component: c.component.to_string(),
        case: c.case.to_string(),
        unit: unit.to_string(),
        higher_is_better,
        hive,
        anchor: anchor.to_string(),
        anchor_value,
        ratio: ratio(hive, anchor_value),
        goal,
    })
}

/// `hive / anchor`, `None` when it is not a finite number.
pub(crate) fn ratio(hive: f64, anchor: f64) -> Option<f64> {
    Some(hive / anchor).filter(|r| r.is_finite())
}

/// The entries the benches wrote to `extra.jsonl` (ratios recomputed); a
/// later line replaces an earlier one with the same key.
pub(crate) fn extras(path: &Path) -> Result<Vec<Entry>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)?;
    let mut by_key: BTreeMap<String, Entry> = BTreeMap::new();
    let mut order = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut entry: Entry = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not an entry", path.display(), n + 1))?;
        entry.ratio = ratio(entry.hive, entry.anchor_value);
        let key = entry.key();
        if by_key.insert(key.clone(), entry).is_none() {
            order.push(key);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect())
}

/// Every comparison of the run: criterion's (manifest order), then extras.
/// Also returns the manifest comparisons that had no result.
pub(crate) fn entries(
    medians: &BTreeMap<String, Median>,
    extras: Vec<Entry>,
) -> (Vec<Entry>, Vec<&'static Comparison>) {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for c in super::manifest::comparisons() {
        match compare(c, medians) {
            Some(e) => out.push(e),
            None => missing.push(c),
        }
    }
    out.extend(extras);
    out.sort_by(|a, b| a.component.cmp(&b.component));
    (out, missing)
}
