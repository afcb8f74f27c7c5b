//! A coordinator agent assigns tasks to worker agents; workers checksum
//! the task, write a summary into pooled scratch space and report back.
//! Prints the seed design's table, measured.
//!
//! `cargo run --release --example swarm [-- <tasks> <workers>]`
#![allow(clippy::print_stdout)] // an example prints its report

use std::time::Duration;

use hive_benches::workload::SwarmWorkload;
use hive_core::SwarmSystem;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let workers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let system = SwarmSystem::builder().build()?;
    let workload = SwarmWorkload {
        tasks,
        workers,
        ..SwarmWorkload::default()
    };
    println!(
        "running {tasks} tasks over {workers} worker agents ({} messages)...",
        tasks * 2 + 1
    );
    let outcome = workload.run(&system)?;
    println!(
        "{} tasks, {} messages in {:.2} s: {:.0} messages/s\n",
        outcome.tasks_done,
        outcome.messages,
        outcome.elapsed.as_secs_f64(),
        outcome.messages_per_sec()
    );
    println!("{}", outcome.report);
    let shutdown = system.shutdown(Duration::from_secs(10));
    println!(
        "shutdown: drained {}, {} messages handled, {} undelivered",
        shutdown.drained, shutdown.handled, shutdown.undelivered
    );
    Ok(())
}
