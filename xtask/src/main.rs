//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI checks (fmt, clippy, lines, tests, docs, crates
//!   alone, cargo-deny, benchmark smoke);
//! - `lines`: no Rust source file over 600 lines;
//! - `imports`: no import loops between a crate's files;
//! - `readme-check`: each crate README's examples compile and run as
//!   written, in a project that depends on that crate alone;
//! - `bench`: the comparison benchmarks and their report.
// xtask is a command-line tool: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod imports;
mod lines;
mod readme;

use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci       fmt, clippy, 600-line check, tests, docs, each crate alone, bench smoke, cargo-deny
  lines    fail if a tracked .rs file has more than 600 lines
  imports  fail if, within a crate, a module imports one that imports it back
  readme-check
           each crate README's examples compile and run in a project that depends on that crate alone
  bench    comparison benchmarks + end-to-end swarm run -> target/hive-bench/report.{json,md,html}
           (cargo xtask bench --help for options)
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(args.get(1..).unwrap_or_default()),
        Some("lines") => lines::run(),
        Some("imports") => imports::run(),
        Some("readme-check") => readme::run(),
        Some("bench") if args.iter().any(|a| a == "--help" || a == "-h") => {
            print!("{}", bench::USAGE);
            Ok(())
        }
        Some("bench") => bench::run(args.get(1..).unwrap_or_default()),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
