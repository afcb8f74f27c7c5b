//! Two processes talking over TCP: this program starts a copy of itself as
//! a child. The parent hosts a `collector` agent; the child hosts a
//! `worker` agent that sends 10,000 results to the collector, which answers
//! each hundredth with an acknowledgement message the other way.
//!
//! `cargo run -p hive-messaging --features tcp --example tcp_pair`
#![allow(clippy::print_stdout)] // an example prints what happens

use std::time::{Duration, Instant};

use anyhow::Context;
use hive_messaging::tcp::{LinkToken, TcpConfig, TcpLink, TcpServer};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message, MessageKind};

const COLLECTOR: AgentId = AgentId::from_u128(0xC011EC7);
const WORKER: AgentId = AgentId::from_u128(0x0000_0000_0000_0000_0000_0000_0000_0042);
const RESULTS: u32 = 10_000;

fn wait_for(comm: &Communicator, agent: AgentId) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !comm.agents().contains(&agent) {
        anyhow::ensure!(Instant::now() < deadline, "peer never announced {agent}");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn parent() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let comm = Communicator::new(CommunicatorConfig::default())?;
    let mut collector = comm.register(COLLECTOR)?;
    // Both processes prove they know this token before any message flows.
    let secret = AgentId::random().to_string();
    let token = LinkToken::new(&secret)?;
    let server = rt.block_on(TcpServer::bind(
        &comm,
        "127.0.0.1:0",
        TcpConfig::token(token),
    ))?;
    println!("parent: collector listening on {}", server.local_addr());
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("child")
        .arg(server.local_addr().to_string())
        .env("HIVE_LINK_TOKEN", &secret)
        .spawn()
        .context("starting the child process")?;
    wait_for(&comm, WORKER)?;
    let replies = comm.sender();
    let started = Instant::now();
    let mut sum = 0u64;
    for i in 1..=RESULTS {
        let m = collector.recv()?;
        sum += u64::from(u32::from_le_bytes(m.payload.as_ref().try_into()?));
        if i % 100 == 0 {
            replies.send(m.reply(COLLECTOR, format!("got {i}")))?;
        }
    }
    replies.flush();
    println!(
        "parent: {RESULTS} results from the child process in {:?} (sum {sum})",
        started.elapsed()
    );
    let status = child.wait()?;
    let s = server.stats();
    println!(
        "parent: sent {} messages ({} acknowledged), received {}, {} B raw -> {} B on the wire",
        s.messages_sent, s.messages_acked, s.messages_received, s.raw_bytes_sent, s.bytes_sent
    );
    rt.block_on(server.shutdown());
    anyhow::ensure!(status.success(), "the child failed: {status}");
    Ok(())
}

fn child(addr: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let comm = Communicator::new(CommunicatorConfig::default())?;
    let mut worker = comm.register(WORKER)?;
    let token = LinkToken::new(std::env::var("HIVE_LINK_TOKEN")?)?;
    let link = rt.block_on(TcpLink::connect(&comm, addr, TcpConfig::token(token)))?;
    wait_for(&comm, COLLECTOR)?;
    let sender = comm.sender();
    for i in 1..=RESULTS {
        let result = Message::builder(WORKER, COLLECTOR)
            .kind(MessageKind::TaskCompleted)
            .payload(i.to_le_bytes().to_vec())
            .build();
        sender.send(result)?;
    }
    sender.flush();
    for _ in 0..RESULTS / 100 {
        let ack = worker.recv_timeout(Duration::from_secs(10))?;
        anyhow::ensure!(ack.kind == MessageKind::Response);
    }
    let report = rt.block_on(link.close());
    println!(
        "child: sent {} results, {} acknowledged by the parent process",
        report.stats.messages_sent, report.stats.messages_acked
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => child(args.get(2).context("child needs the parent's address")?),
        _ => parent(),
    }
}
