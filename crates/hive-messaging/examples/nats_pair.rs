//! A swarm across two processes over NATS: this program starts a copy of
//! itself; both connect to the NATS server at `$NATS_URL` (default
//! `nats://127.0.0.1:4222`; start one with `nats-server -p 4222`). The
//! parent hosts a `planner` agent and sends 5,000 task assignments to a
//! `worker` agent hosted by the child, which reports each one done.
//!
//! `cargo run -p hive-messaging --features nats --example nats_pair`
#![allow(clippy::print_stdout)] // an example prints what happens

use std::time::{Duration, Instant};

use anyhow::Context;
use hive_messaging::nats::{NatsConfig, NatsTransport};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message, MessageKind};

const PLANNER: AgentId = AgentId::from_u128(0x91A2);
const WORKER: AgentId = AgentId::from_u128(0x3070);
const TASKS: u32 = 5_000;

fn url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn config() -> NatsConfig {
    NatsConfig {
        swarm: "example".into(),
        ..NatsConfig::default()
    }
}

fn parent() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let comm = Communicator::new(CommunicatorConfig::default())?;
    let mut planner = comm.register(PLANNER)?;
    let nats = rt
        .block_on(NatsTransport::connect(&comm, &url(), config()))
        .context("is nats-server running?")?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("child")
        .spawn()?;
    // The worker is ready when it says hello.
    let hello = planner.recv_timeout(Duration::from_secs(10))?;
    anyhow::ensure!(hello.sender == WORKER, "unexpected hello");
    let started = Instant::now();
    let sender = comm.sender();
    for i in 0..TASKS {
        let task = Message::builder(PLANNER, WORKER)
            .kind(MessageKind::TaskAssigned)
            .payload(i.to_le_bytes().to_vec())
            .build();
        sender.send(task)?;
    }
    sender.flush();
    for _ in 0..TASKS {
        let done = planner.recv_timeout(Duration::from_secs(10))?;
        anyhow::ensure!(done.kind == MessageKind::TaskCompleted);
    }
    println!(
        "parent: {TASKS} tasks assigned and completed across processes in {:?}",
        started.elapsed()
    );
    child.wait()?;
    let stats = rt.block_on(nats.close());
    println!(
        "parent: {} messages in {} frames, {} acknowledged, {} not; {} B on the wire for {} B raw",
        stats.messages_sent,
        stats.frames_sent,
        stats.messages_acked,
        stats.undelivered(),
        stats.bytes_sent,
        stats.raw_bytes_sent
    );
    Ok(())
}

fn child() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let comm = Communicator::new(CommunicatorConfig::default())?;
    let mut worker = comm.register(WORKER)?;
    let nats = rt.block_on(NatsTransport::connect(&comm, &url(), config()))?;
    let sender = comm.sender();
    sender.send(Message::new(WORKER, PLANNER, "ready"))?;
    for _ in 0..TASKS {
        let task = worker.recv_timeout(Duration::from_secs(10))?;
        sender.send(
            Message::builder(WORKER, PLANNER)
                .kind(MessageKind::TaskCompleted)
                .payload(task.payload)
                .build(),
        )?;
    }
    sender.flush();
    rt.block_on(nats.settle(Duration::from_secs(10)))?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("child") => child(),
        _ => parent(),
    }
}
