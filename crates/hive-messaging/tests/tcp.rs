//! Two communicators over TCP on 127.0.0.1: order over a million messages,
//! broadcast, backpressure, graceful close, saturated traffic both ways, and
//! a peer process killed mid-stream.
#![cfg(feature = "tcp")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

use std::time::{Duration, Instant};

use hive_messaging::tcp::{TcpConfig, TcpLink, TcpServer};
use hive_messaging::{Communicator, CommunicatorConfig, UndeliveredReason};
use hive_types::{AgentId, HiveError, Message, MessageKind, Recipient};
use support::{comm, numbered, runtime, seq, wait_for_route, wait_until, KillOnDrop};

#[test]
fn a_million_messages_cross_in_order() {
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", TcpConfig::plaintext()))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(
            &a,
            server.local_addr(),
            TcpConfig::plaintext(),
        ))
        .unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    wait_for_route(&a, to);
    const N: u32 = 1_000_000;
    let sender = a.sender();
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            let mut payload = i.to_le_bytes().to_vec();
            payload.extend_from_slice(b" status: nominal, shard progressing");
            sender.send(Message::new(from, to, payload)).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut next = 0u32;
    while next < N {
        mailbox.recv_many(&mut buf, 1024).unwrap();
        for m in buf.drain(..) {
            assert_eq!(seq(&m), next, "out of order");
            next += 1;
        }
    }
    producer.join().unwrap();
    let stats = a.stats();
    assert_eq!(
        (stats.sent, stats.delivered),
        (u64::from(N), u64::from(N)),
        "messages the link took count as delivered on the sending side"
    );
    let report = rt.block_on(link.close());
    assert_eq!(report.error, None);
    assert_eq!(
        (
            report.stats.messages_sent,
            report.stats.messages_acked,
            report.undelivered()
        ),
        (u64::from(N), u64::from(N), 0)
    );
    assert!(
        report.stats.bytes_sent < report.stats.raw_bytes_sent,
        "compressed on the wire"
    );
    rt.block_on(server.shutdown());
}

#[test]
fn broadcast_reaches_agents_on_both_sides() {
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", TcpConfig::plaintext()))
        .unwrap();
    let _link = rt
        .block_on(TcpLink::connect(
            &a,
            server.local_addr(),
            TcpConfig::plaintext(),
        ))
        .unwrap();
    let here: Vec<AgentId> = (0..2).map(|_| AgentId::random()).collect();
    let there: Vec<AgentId> = (0..3).map(|_| AgentId::random()).collect();
    let mut near: Vec<_> = here.iter().map(|&x| a.register(x).unwrap()).collect();
    let mut far: Vec<_> = there.iter().map(|&x| b.register(x).unwrap()).collect();
    for &x in &there {
        wait_for_route(&a, x);
    }
    let hello = Message::builder(here[0], Recipient::Broadcast)
        .kind(MessageKind::Broadcast)
        .payload("all")
        .build();
    a.sender().broadcast(hello).unwrap();
    for mb in near[1..].iter_mut().chain(far.iter_mut()) {
        let m = mb.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (m.payload.as_ref(), m.recipient),
            (&b"all"[..], Recipient::Broadcast)
        );
    }
    assert_eq!(near[0].try_recv().unwrap(), None);
}

#[test]
fn graceful_close_delivers_everything_and_refuses_later_sends() {
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", TcpConfig::plaintext()))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(
            &a,
            server.local_addr(),
            TcpConfig::plaintext(),
        ))
        .unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    wait_for_route(&a, to);
    let consumer = std::thread::spawn(move || {
        for i in 0..10_000u32 {
            assert_eq!(seq(&mailbox.recv().unwrap()), i);
        }
    });
    let sender = a.sender();
    for i in 0..10_000u32 {
        sender
            .send(Message::new(from, to, i.to_le_bytes().to_vec()))
            .unwrap();
    }
    let report = rt.block_on(link.close());
    assert_eq!(
        (report.stats.messages_acked, report.undelivered()),
        (10_000, 0),
        "{report:?}"
    );
    assert_eq!(report.error, None);
    consumer.join().unwrap();
    let refused = sender.send(Message::new(from, to, vec![0; 4])).unwrap_err();
    assert!(
        matches!(refused.error(), HiveError::UnknownAgent(_)),
        "{refused}"
    );
}

#[test]
fn a_slow_peer_pushes_back_on_senders() {
    let rt = runtime();
    let (a, b) = (
        comm(),
        Communicator::new(CommunicatorConfig::default().mailbox_capacity(16)).unwrap(),
    );
    let config = TcpConfig {
        write_queue: 64,
        unacked_frames: 2,
        frame_messages: 8,
        ..TcpConfig::plaintext()
    };
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", config.clone()))
        .unwrap();
    let _link = rt
        .block_on(TcpLink::connect(&a, server.local_addr(), config))
        .unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let _mailbox = b.register(to).unwrap(); // never read
    wait_for_route(&a, to);
    let sender = a.sender();
    let mut accepted = 0;
    let full = loop {
        match sender.try_send(Message::new(from, to, vec![1u8; 32])) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        if accepted % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(accepted < 100_000, "nothing ever pushed back");
    };
    assert!(full.is_full(), "{full}");
    assert!(accepted < 1_000, "bounded: {accepted} accepted before Full");
}

/// The peer for `killing_the_peer_mid_stream_reports_every_unacknowledged_message`:
/// run in a child process (it is skipped unless the parent sets the variable).
#[test]
fn peer_process() {
    let Ok(addr) = std::env::var("HIVE_TCP_TEST_PEER") else {
        return;
    };
    let agent: AgentId = std::env::var("HIVE_TCP_TEST_AGENT")
        .unwrap()
        .parse()
        .unwrap();
    let rt = runtime();
    let here = comm();
    let mut mailbox = here.register(agent).unwrap();
    let _link = rt
        .block_on(TcpLink::connect(&here, addr, TcpConfig::plaintext()))
        .unwrap();
    loop {
        // Consume slowly until the parent kills this process.
        let _ = mailbox.recv_timeout(Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(50));
    }
}

#[test]
fn killing_the_peer_mid_stream_reports_every_unacknowledged_message() {
    let rt = runtime();
    let a = comm();
    let server = rt
        .block_on(TcpServer::bind(&a, "127.0.0.1:0", TcpConfig::plaintext()))
        .unwrap();
    let (from, remote) = (AgentId::random(), AgentId::random());
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "peer_process", "--nocapture"])
            .env("HIVE_TCP_TEST_PEER", server.local_addr().to_string())
            .env("HIVE_TCP_TEST_AGENT", remote.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_route(&a, remote);
    let sender = a.sender();
    let mut accepted = 0u64;
    let mut refused = 0u64;
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(30) {
        match sender.send_timeout(
            Message::new(from, remote, vec![7u8; 4096]),
            Duration::from_secs(5),
        ) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(
                    matches!(
                        e.error(),
                        HiveError::UnknownAgent(_) | HiveError::Timeout { .. }
                    ),
                    "{e}"
                );
                refused += 1;
                if killed && !a.agents().contains(&remote) {
                    break;
                }
            }
        }
        if !killed && accepted == 20_000 {
            child.0.kill().unwrap(); // SIGKILL: no goodbye, frames in flight
            child.0.wait().unwrap();
            killed = true;
        }
    }
    assert!(killed, "the peer was killed");
    assert!(refused > 0, "sends after the crash fail instead of hanging");
    drop(sender); // flush what it held: it cannot reach the peer any more
    wait_until("the dead link to be pruned", || server.link_count() == 0);
    let link = server.stats();
    let stats = a.stats();
    let (unknown, not_sent) = (
        stats.undeliverable_for(UndeliveredReason::Unknown),
        stats.undeliverable_for(UndeliveredReason::NotSent),
    );
    assert!(
        unknown > 0,
        "frames were in flight when the peer died: {link:?}"
    );
    assert_eq!(
        (link.messages_unknown, link.messages_not_sent),
        (unknown, not_sent)
    );
    // Written messages were acknowledged or are unknown; every accepted one
    // was delivered, is unknown, or is known not delivered.
    assert_eq!(
        link.messages_sent,
        link.messages_acked + link.messages_unknown
    );
    assert_eq!(
        link.messages_acked + stats.undeliverable,
        accepted,
        "{link:?}, {stats:?}"
    );
    assert_eq!(server.ended_links(), 1);
    rt.block_on(server.shutdown());
}

/// Both sides send as fast as they can while both windows are full: the
/// acknowledgements each side owes the other must still get through.
fn saturated_both_ways(unacked_frames: usize) {
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let config = TcpConfig {
        unacked_frames,
        ..TcpConfig::plaintext()
    };
    let server = rt
        .block_on(TcpServer::bind(&b, "127.0.0.1:0", config.clone()))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(&a, server.local_addr(), config))
        .unwrap();
    let (on_a, on_b) = (AgentId::random(), AgentId::random());
    let (mut mailbox_a, mut mailbox_b) = (a.register(on_a).unwrap(), b.register(on_b).unwrap());
    wait_for_route(&a, on_b);
    wait_for_route(&b, on_a);
    const N: u32 = 5_000;
    let send_all = |comm: &Communicator, from: AgentId, to: AgentId| {
        let sender = comm.sender();
        std::thread::spawn(move || {
            for i in 0..N {
                sender.send(numbered(from, to, i, 4096)).unwrap();
            }
        })
    };
    let producers = [send_all(&a, on_a, on_b), send_all(&b, on_b, on_a)];
    let receive_all = |mailbox: &mut hive_messaging::Mailbox| {
        for i in 0..N {
            let m = mailbox
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("stalled after {i} messages: {e}"));
            assert_eq!(seq(&m), i);
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| receive_all(&mut mailbox_a));
        receive_all(&mut mailbox_b);
    });
    for p in producers {
        p.join().unwrap();
    }
    let report = rt.block_on(link.close());
    assert_eq!(report.error, None);
    assert_eq!(
        (report.stats.messages_acked, report.stats.messages_received),
        (u64::from(N), u64::from(N))
    );
    rt.block_on(server.shutdown());
}

#[test]
fn saturated_traffic_both_ways_with_a_window_of_one_frame() {
    saturated_both_ways(1);
}

#[test]
fn saturated_traffic_both_ways_with_the_default_window() {
    saturated_both_ways(TcpConfig::plaintext().unacked_frames);
}
