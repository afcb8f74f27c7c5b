//! A consuming process SIGKILLed mid-stream and restarted: with durable
//! (JetStream) mail every message is handled at least once, and the
//! duplicates are no more than what was unacknowledged at the crash.
//!
//! The consumer is this test binary run again as a child (`consumer`,
//! steered by environment variables): it appends each handled message's
//! sequence number and redelivery flag to a log with one `write` per batch,
//! before it drops (and so acknowledges) the batch.
#![cfg(feature = "jetstream")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hive_messaging::nats::NatsConfig;
use hive_types::AgentId;
use support::nats::{connect, durable_swarm, nats_server_binary, JetStreamServer};
use support::{comm, numbered, runtime, seq, wait_within, KillOnDrop};

const URL: &str = "HIVE_JS_CHILD_URL";
const SWARM: &str = "HIVE_JS_CHILD_SWARM";
const AGENT: &str = "HIVE_JS_CHILD_AGENT";
const LOG: &str = "HIVE_JS_CHILD_LOG";
/// Starts each run's part of the log.
const MARK: u32 = u32::MAX;

fn config(swarm: String) -> NatsConfig {
    NatsConfig {
        swarm,
        ..durable_swarm()
    }
}

/// The child: hosts the agent and logs what it handles, until killed.
#[test]
fn consumer() {
    let (Ok(url), Ok(swarm), Ok(agent), Ok(log)) = (
        std::env::var(URL),
        std::env::var(SWARM),
        std::env::var(AGENT),
        std::env::var(LOG),
    ) else {
        return; // run as a test of its own: nothing to do
    };
    let rt = runtime();
    let b = comm();
    let mut mailbox = b.register(agent.parse::<AgentId>().unwrap()).unwrap();
    let _t = connect(rt.handle(), &b, &url, &config(swarm));
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .unwrap();
    log.write_all(&[MARK.to_le_bytes().as_slice(), &[0]].concat())
        .unwrap();
    let (mut batch, mut out) = (Vec::new(), Vec::new());
    loop {
        mailbox.recv_many(&mut batch, 1024).unwrap();
        for m in &batch {
            let again = m.receipt.as_ref().is_some_and(|r| r.redelivered());
            out.extend_from_slice(&seq(m).to_le_bytes());
            out.push(u8::from(again));
        }
        log.write_all(&out).unwrap();
        out.clear();
        batch.clear(); // handled: their frames are acknowledged
    }
}

fn start_child(url: &str, swarm: &str, agent: AgentId, log: &Path) -> KillOnDrop {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["consumer", "--exact", "--nocapture", "--test-threads=1"])
        .env(URL, url)
        .env(SWARM, swarm)
        .env(AGENT, agent.to_string())
        .env(LOG, log)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// The log's entries: (sequence, redelivered), `MARK` where a run began.
fn read_log(log: &Path) -> Vec<(u32, bool)> {
    let bytes = std::fs::read(log).unwrap_or_default();
    bytes
        .chunks_exact(5)
        .map(|c| (u32::from_le_bytes(c[..4].try_into().unwrap()), c[4] == 1))
        .collect()
}

#[test]
fn a_consumer_killed_mid_stream_and_restarted_handles_every_message() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let js = JetStreamServer::start(&bin);
    let url = js.server.url();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("handled.log");
    let config = config(support::nats::swarm().swarm);
    let d = config.durable.clone().unwrap();
    let to = AgentId::random();
    let mut child = start_child(&url, &config.swarm, to, &log);
    wait_within("the consumer to start", Duration::from_secs(30), || {
        !read_log(&log).is_empty()
    });

    const N: u32 = 1_000_000;
    let rt = runtime();
    let a = comm();
    let ta = connect(rt.handle(), &a, &url, &config);
    let sender = a.sender();
    let from = AgentId::random();
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            sender.send(numbered(from, to, i, 24)).unwrap();
        }
        sender.flush();
    });
    wait_within("300,000 handled", Duration::from_secs(120), || {
        read_log(&log).len() > 300_000
    });
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let at_kill = read_log(&log).len() - 1;
    let _child = start_child(&url, &config.swarm, to, &log);
    let mut seen = vec![false; N as usize];
    let mut distinct = 0usize;
    let mut read = 0usize;
    wait_within("every message handled", Duration::from_secs(180), || {
        let entries = read_log(&log);
        for (s, _) in &entries[read..] {
            if *s != MARK && !std::mem::replace(&mut seen[*s as usize], true) {
                distinct += 1;
            }
        }
        read = entries.len();
        distinct == N as usize
    });
    producer.join().unwrap();
    rt.block_on(ta.settle(Duration::from_secs(30))).unwrap();
    let sent = ta.stats();
    assert_eq!(sent.messages_acked, u64::from(N), "{sent:?}");

    let entries = read_log(&log);
    let runs: Vec<&[(u32, bool)]> = entries
        .split(|(s, _)| *s == MARK)
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(runs.len(), 2, "two runs of the consumer");
    // In order per sender: first deliveries only ever move forward.
    for run in &runs {
        let fresh: Vec<u32> = run.iter().filter(|(_, r)| !r).map(|(s, _)| *s).collect();
        assert!(fresh.windows(2).all(|w| w[0] < w[1]), "out of order");
    }
    let handled = entries.len() - 2;
    let duplicates = handled - N as usize;
    let redelivered = runs[1].iter().filter(|(_, r)| *r).count();
    // What can come twice is what was handed out and not acknowledged.
    let window = d.max_ack_pending * config.frame_messages;
    eprintln!(
        "crash: {at_kill} handled before the kill, {handled} in all, \
         {duplicates} duplicates, {redelivered} redelivered, window {window}"
    );
    assert!(duplicates <= window, "{duplicates} duplicates > {window}");
    assert!(redelivered >= duplicates);
    rt.block_on(ta.close());
}
