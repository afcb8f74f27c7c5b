//! Runs the benchmark targets one by one with a compact progress display;
//! everything they print goes to `target/hive-bench/logs/<bench>.log`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::manifest::BENCHES;
use super::summary::number;

/// Builds the benches in release mode, then runs each target.
pub(crate) fn run_benches(root: &Path, out: &Path, quick: bool) -> Result<()> {
    std::fs::create_dir_all(out.join("logs"))?;
    for stale in ["extra.jsonl", "swarm.json"] {
        let path = out.join(stale);
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    println!("building benchmarks (release)...");
    let status = cargo(root, quick)
        .args(["bench", "-p", "hive-benches", "--no-run"])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the benchmarks failed");
    }
    let mode = if quick { "quick smoke run" } else { "full run" };
    println!("running {} benchmark targets ({mode})", BENCHES.len());
    let all = Instant::now();
    for (i, bench) in BENCHES.iter().enumerate() {
        let started = Instant::now();
        println!("[{}/{}] {bench}", i + 1, BENCHES.len());
        run_one(root, out, bench, quick)?;
        println!(
            "      {bench} done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "all benchmarks done in {:.0} s",
        all.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cargo(root: &Path, quick: bool) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    if quick {
        cmd.env("HIVE_BENCH_QUICK", "1");
    } else {
        cmd.env_remove("HIVE_BENCH_QUICK");
    }
    cmd
}

/// Longest one benchmark target may run before it is killed: a hung bench
/// must not hang CI.
fn time_limit(quick: bool) -> Duration {
    Duration::from_secs(if quick { 10 * 60 } else { 60 * 60 })
}

/// Kills process group `group` unless `done` is set within `limit`.
fn watchdog(group: u32, limit: Duration, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !done.load(Ordering::Acquire) {
            eprintln!("benchmark over its {} s limit: killing it", limit.as_secs());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    });
}

fn run_one(root: &Path, out: &Path, bench: &str, quick: bool) -> Result<()> {
    let log_path = out.join("logs").join(format!("{bench}.log"));
    let mut log = File::create(&log_path)?;
    let mut child = cargo(root, quick)
        .args(["bench", "-q", "-p", "hive-benches", "--bench", bench])
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?)
        // Its own process group, so the watchdog can stop cargo and the
        // bench binary together.
        .process_group(0)
        .spawn()
        .context("running cargo bench")?;
    let done = Arc::new(AtomicBool::new(false));
    watchdog(child.id(), time_limit(quick), done.clone());
    let stdout = child.stdout.take().context("no stdout from cargo bench")?;
    let mut pending: Option<String> = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(log, "{line}")?;
        if let Some(shown) = progress_line(&line, &mut pending) {
            println!("      {shown}");
        }
    }
    let status = child.wait()?;
    done.store(true, Ordering::Release);
    if !status.success() {
        bail!(
            "benchmark `{bench}` failed ({status}); see {}",
            log_path.display()
        );
    }
    Ok(())
}

/// What to show of one line of a bench's output: a criterion id with its
/// time estimate, an extra measurement, or the swarm run's own lines.
/// `pending` holds an id whose time comes on the next line.
fn progress_line(line: &str, pending: &mut Option<String>) -> Option<String> {
    if let Some(json) = line.strip_prefix("extra: ") {
        let e: super::collect::Entry = serde_json::from_str(json).ok()?;
        return Some(format!(
            "{} / {}: {} {} (vs {} {})",
            e.component,
            e.case,
            number(e.hive),
            e.unit,
            e.anchor,
            number(e.anchor_value)
        ));
    }
    if line.starts_with("swarm ") || line.starts_with("nats:") {
        return Some(line.to_string());
    }
    let trimmed = line.trim_start();
    if let Some(time) = trimmed.strip_prefix("time:") {
        let id = pending.take()?;
        return Some(format!("{id}: {}", estimate(time)));
    }
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let id = line.split_whitespace().next()?;
    if !id.contains('/') {
        return None;
    }
    match line.split_once("time:") {
        Some((_, time)) => Some(format!("{id}: {}", estimate(time))),
        None => {
            *pending = Some(id.to_string());
            None
        }
    }
}

/// The middle of criterion's `[low estimate high]`.
fn estimate(time: &str) -> String {
    let parts: Vec<&str> = time
        .trim()
        .trim_matches(['[', ']'])
        .split_whitespace()
        .collect();
    match parts.as_slice() {
        [_, _, value, unit, ..] => format!("{value} {unit}"),
        _ => time.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_lines_become_one_line_per_benchmark() {
        let mut pending = None;
        let out = [
            "types.id_creation/hive  time:   [8.0354 ns 8.1690 ns 8.2897 ns]",
            "                        change: [+0.7% +6.8% +11.4%] (p = 0.03 < 0.05)",
            "types.id_creation/uuid_new_v4",
            "                        time:   [466.18 ns 477.74 ns 489.81 ns]",
            "Found 2 outliers among 10 measurements (20.00%)",
            "swarm [all on]: 2240000 msg/s",
        ]
        .map(|l| progress_line(l, &mut pending));
        assert_eq!(out[0].as_deref(), Some("types.id_creation/hive: 8.1690 ns"));
        assert_eq!(out[1], None);
        assert_eq!(out[2], None);
        assert_eq!(
            out[3].as_deref(),
            Some("types.id_creation/uuid_new_v4: 477.74 ns")
        );
        assert_eq!(out[4], None);
        assert_eq!(out[5].as_deref(), Some("swarm [all on]: 2240000 msg/s"));
    }

    #[test]
    fn the_watchdog_kills_a_hung_process_group_and_spares_a_finished_one() {
        // A parent and a grandchild that both hang, as cargo and a bench do.
        let mut hung = Command::new("sh")
            .args(["-c", "sleep 600 & sleep 600"])
            .process_group(0)
            .spawn()
            .unwrap();
        watchdog(
            hung.id(),
            Duration::from_millis(100),
            Arc::new(AtomicBool::new(false)),
        );
        assert!(!hung.wait().unwrap().success(), "killed");

        let mut quick = Command::new("true").process_group(0).spawn().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        watchdog(quick.id(), Duration::from_secs(600), done.clone());
        assert!(quick.wait().unwrap().success());
        done.store(true, Ordering::Release);
    }

    #[test]
    fn extras_are_shown_compactly() {
        let line = r#"extra: {"component":"hive-core","case":"c","unit":"MB","higher_is_better":false,"hive":7.5,"anchor":"goal: 20 MB","anchor_value":20,"ratio":0.375,"goal":1}"#;
        assert_eq!(
            progress_line(line, &mut None).as_deref(),
            Some("hive-core / c: 7.50 MB (vs goal: 20 MB 20.00)")
        );
    }
}
