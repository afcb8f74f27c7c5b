//! `cargo xtask ci`: every check CI runs, each timed, then a summary:
//! fmt, clippy, the 600-line rule, import loops, tests, docs, README
//! examples, loom models, Miri, each library crate alone, a benchmark
//! smoke run, cargo-deny.

use std::time::{Duration, Instant};

use xshell::{cmd, Shell};

/// Library crates a user may pick alone; each must build by itself with its
/// default features and with none.
pub(crate) const LIBRARY_CRATES: &[&str] = &[
    "hive-types",
    "hive-messaging",
    "hive-mempool",
    "hive-cpubalance",
    "hive-metrics",
    "hive-core",
];

/// Crates with loom models of their lock-free parts (tests named `loom_*`,
/// built with `--cfg hive_loom`).
const LOOM_CRATES: &[&str] = &["hive-mempool", "hive-cpubalance", "hive-messaging"];

/// Crates whose unit tests also run under Miri (nightly). hive-core is
/// left out: its unit tests start tokio runtimes and balancer threads whose
/// timers make a Miri run take far longer than CI allows; what it shares
/// with the others (the inbox, the balancer) is covered through them.
/// Tests too slow for Miri say so with `cfg_attr(miri, ignore)`.
const MIRI_CRATES: &[&str] = &[
    "hive-types",
    "hive-mempool",
    "hive-cpubalance",
    "hive-messaging",
];

struct Outcome {
    name: String,
    took: Duration,
    passed: bool,
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = args.first() {
        anyhow::bail!("`cargo xtask ci` takes no arguments (got `{unknown}`)");
    }
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    let started = Instant::now();
    let mut outcomes = Vec::new();

    step(&mut outcomes, "fmt", || {
        Ok(cmd!(sh, "cargo fmt --all -- --check").run()?)
    });
    step(&mut outcomes, "clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --workspace --all-targets --all-features -- -D warnings"
        )
        .run()?)
    });
    step(&mut outcomes, "lines", crate::lines::run);
    step(&mut outcomes, "imports", crate::imports::run);
    step(&mut outcomes, "test", || {
        Ok(cmd!(sh, "cargo test --workspace --all-features").run()?)
    });
    step(&mut outcomes, "doc", || {
        Ok(cmd!(sh, "cargo doc --workspace --no-deps --all-features")
            .env("RUSTDOCFLAGS", "-D warnings")
            .run()?)
    });
    step(&mut outcomes, "readme-check", crate::readme::run);
    step(&mut outcomes, "loom models", || {
        let crates = LOOM_CRATES.iter().flat_map(|c| ["-p", c]);
        Ok(cmd!(sh, "cargo test --release {crates...} --lib loom_")
            .env("RUSTFLAGS", "--cfg hive_loom")
            .env("CARGO_TARGET_DIR", "target/loom")
            .run()?)
    });
    step(&mut outcomes, "miri", || {
        let crates = MIRI_CRATES.iter().flat_map(|c| ["-p", c]);
        Ok(cmd!(sh, "cargo +nightly miri test {crates...} --lib")
            .env("MIRIFLAGS", "-Zmiri-disable-isolation")
            .run()?)
    });
    for krate in LIBRARY_CRATES {
        step(&mut outcomes, &format!("alone: {krate}"), || {
            cmd!(sh, "cargo check --quiet -p {krate}").run()?;
            Ok(cmd!(sh, "cargo check --quiet -p {krate} --no-default-features").run()?)
        });
    }
    step(&mut outcomes, "bench --quick (smoke)", || {
        crate::bench::run(&["--quick".to_string()])
    });
    step(&mut outcomes, "cargo-deny", || {
        ensure_cargo_deny(&sh)?;
        Ok(cmd!(
            sh,
            "cargo deny --log-level error check licenses bans sources"
        )
        .run()?)
    });

    summarize(&outcomes, started.elapsed())
}

fn step(outcomes: &mut Vec<Outcome>, name: &str, body: impl FnOnce() -> anyhow::Result<()>) {
    println!("\n==> {name}");
    let started = Instant::now();
    let result = body();
    let took = started.elapsed();
    let passed = match result {
        Ok(()) => true,
        Err(e) => {
            eprintln!("step `{name}` failed: {e:#}");
            false
        }
    };
    println!(
        "<== {name}: {} in {:.1}s",
        if passed { "ok" } else { "FAILED" },
        took.as_secs_f64()
    );
    outcomes.push(Outcome {
        name: name.to_string(),
        took,
        passed,
    });
}

fn ensure_cargo_deny(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "cargo deny --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        println!("cargo-deny is missing: installing it (once per machine)");
        cmd!(sh, "cargo install cargo-deny --locked").run()?;
    }
    Ok(())
}

fn summarize(outcomes: &[Outcome], total: Duration) -> anyhow::Result<()> {
    println!("\nci summary:");
    for o in outcomes {
        let mark = if o.passed { "ok    " } else { "FAILED" };
        println!("  {mark} {:<28} {:>7.1}s", o.name, o.took.as_secs_f64());
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.name.as_str())
        .collect();
    println!(
        "ci: {} of {} steps passed in {:.1} min",
        outcomes.len() - failed.len(),
        outcomes.len(),
        total.as_secs_f64() / 60.0
    );
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("failed steps: {}", failed.join(", "))
    }
}
