//! Earlier runs: each report is kept in `target/hive-bench/history/`, at
//! most [`KEEP`] of them, oldest removed first.

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use super::collect::Entry;
use super::machine::Machine;

/// Reports kept in the history.
pub(crate) const KEEP: usize = 50;

/// A saved report.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Report {
    pub machine: Machine,
    pub entries: Vec<Entry>,
}

/// The saved reports in `dir`, oldest first; unreadable files are skipped.
pub(crate) fn load(dir: &Path) -> Vec<Report> {
    files(dir)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect()
}

/// Saves `report_json` as the newest run, then trims the history to [`KEEP`].
pub(crate) fn save(dir: &Path, timestamp: &str, report_json: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = format!("{}.json", timestamp.replace(':', "-"));
    std::fs::write(dir.join(name), report_json)?;
    let all = files(dir);
    for old in all.iter().take(all.len().saturating_sub(KEEP)) {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

/// The `.json` files of `dir`, by name (their timestamps), oldest first.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let machine = serde_json::json!({
            "cpu": "c", "cores": 2, "memory_gib": null, "os": "o", "rustc": "r",
            "commit": "x", "timestamp": "t", "quick": true
        });
        for i in 0..KEEP + 3 {
            let report = serde_json::json!({ "machine": machine, "entries": [] }).to_string();
            save(dir.path(), &format!("2026-01-01T00:00:{i:03}Z"), &report).unwrap();
        }
        assert_eq!(files(dir.path()).len(), KEEP);
        let first = files(dir.path())[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(first, "2026-01-01T00-00-003Z.json", "the oldest three went");
        assert_eq!(load(dir.path()).len(), KEEP);
    }
}
