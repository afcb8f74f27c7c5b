//! The NATS transport when the server goes away: a restart mid-stream, a
//! 30 s outage (senders held back, memory bounded, every message accounted
//! for, the unknown ones resent and received once), `close()` while the
//! server is down, and a slow consumer with no fault at all.
#![cfg(feature = "nats")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hive_messaging::nats::{NatsConfig, NatsTransport};
use hive_messaging::{Communicator, CommunicatorConfig, HiveError};
use hive_types::{AgentId, Message};
use support::nats::{free_port, nats_server_binary, swarm, Server};
use support::{comm, numbered, runtime, seq, wait_until};

/// Keeps every undelivered message so a test can resend them all.
fn keeping_comm() -> Communicator {
    Communicator::new(
        CommunicatorConfig::default()
            .dead_letter_capacity(1 << 20)
            .dead_letter_bytes(1 << 30),
    )
    .unwrap()
}

#[test]
fn a_server_restart_mid_stream_loses_nothing_silently() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let mut server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = NatsConfig {
        ack_timeout: Duration::from_secs(2),
        ..swarm()
    };
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config))
        .unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = received.clone();
    let consumer = std::thread::spawn(move || loop {
        match mailbox.recv_timeout(Duration::from_secs(8)) {
            Ok(_) => {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Err(_) => return,
        }
    });
    let sender = a.sender();
    let mut accepted = 0u64;
    for i in 0..60_000u32 {
        if sender
            .send(Message::new(from, to, i.to_le_bytes().to_vec()))
            .is_ok()
        {
            accepted += 1;
        }
        if i == 20_000 {
            server.restart(); // reconnects by itself; frames in flight are lost
        }
        if i % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    drop(sender);
    rt.block_on(ta.settle(Duration::from_secs(20))).unwrap();
    consumer.join().unwrap();
    let s = ta.stats();
    let received = received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(s.reconnects >= 1, "{s:?}");
    assert_eq!(
        s.messages_acked + s.undelivered(),
        accepted,
        "every accepted message settled: {s:?}"
    );
    // Reported ones may have arrived (a lost acknowledgement); acked ones did.
    assert!(
        received >= s.messages_acked && received <= accepted,
        "received {received}, {s:?}"
    );
    assert_eq!(a.stats().undeliverable, s.undelivered());
}

#[test]
fn a_30_second_outage_holds_senders_back_and_accounts_for_every_message() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let mut server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = NatsConfig {
        write_queue_bytes: 1 << 20,
        in_flight_bytes: 1 << 20,
        ack_timeout: Duration::from_secs(5),
        ..swarm()
    };
    // The receiver remembers enough ids to recognise a resent message
    // among everything that arrived since the original.
    let b = Communicator::new(CommunicatorConfig::default().dedup_window(1 << 20)).unwrap();
    let a = keeping_comm();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config.clone()))
        .unwrap();
    // The consumer records every sequence number it sees, and repeats.
    let seen = Arc::new(Mutex::new((HashSet::new(), 0u64)));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(m) = mailbox.recv_timeout(Duration::from_millis(100)) {
                    let mut s = seen.lock().unwrap();
                    if !s.0.insert(seq(&m)) {
                        s.1 += 1;
                    }
                }
            }
        })
    };
    // The producer sends 1 KiB messages as fast as it is let, giving up on
    // one after 200 ms.
    let (accepted, held_back) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicU64::new(0)),
    );
    let sending = Arc::new(AtomicBool::new(true));
    let producer = {
        let (accepted, held_back, sending) = (accepted.clone(), held_back.clone(), sending.clone());
        let sender = a.sender();
        std::thread::spawn(move || {
            let mut i = 0u32;
            while sending.load(Ordering::SeqCst) {
                match sender.send_timeout(numbered(from, to, i, 1020), Duration::from_millis(200)) {
                    Ok(()) => accepted.lock().unwrap().push(i),
                    Err(e) => {
                        assert!(matches!(e.error(), HiveError::Timeout { .. }), "{e}");
                        held_back.fetch_add(1, Ordering::SeqCst);
                    }
                }
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    server.stop();
    let before = accepted.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(30));
    let during = accepted.lock().unwrap().len() - before;
    server.start_again();
    std::thread::sleep(Duration::from_secs(3));
    sending.store(false, Ordering::SeqCst);
    producer.join().unwrap();
    // Bounded: the write queue, the frames in flight and the senders'
    // open batches, about 2 MiB of 1 KiB messages, not 30 s of sending.
    assert!(
        during < 6_000,
        "{during} messages accepted while the server was down"
    );
    assert!(
        held_back.load(Ordering::SeqCst) > 0,
        "senders were held back"
    );
    rt.block_on(ta.settle(Duration::from_secs(20))).unwrap();
    let accepted: Vec<u32> = accepted.lock().unwrap().clone();
    let s = ta.stats();
    assert!(s.reconnects >= 1, "{s:?}");
    assert_eq!(
        s.messages_acked + a.stats().undeliverable,
        accepted.len() as u64,
        "every accepted message is acknowledged or reported: {s:?}"
    );
    // Resending what was reported is safe: each arrives exactly once.
    let reported = a.take_undelivered();
    assert_eq!(reported.len() as u64, a.stats().undeliverable);
    let sender = a.sender();
    sender.resend(reported).unwrap();
    drop(sender);
    rt.block_on(ta.settle(Duration::from_secs(20))).unwrap();
    wait_until("every accepted message to arrive", || {
        seen.lock().unwrap().0.len() == accepted.len()
    });
    stop.store(true, Ordering::SeqCst);
    consumer.join().unwrap();
    let (got, repeats) = {
        let s = seen.lock().unwrap();
        (s.0.clone(), s.1)
    };
    assert_eq!(repeats, 0, "no message reached the agent twice");
    assert_eq!(got, accepted.into_iter().collect::<HashSet<u32>>());
    drop(tb);
}

#[test]
fn close_while_the_server_is_down_returns_by_its_deadline() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let mut server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = NatsConfig {
        close_timeout: Duration::from_secs(2),
        in_flight: 4,
        frame_messages: 64,
        ..swarm()
    };
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let _mailbox = b.register(to).unwrap(); // never read: acknowledgements wait
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(
            &b,
            &server.url(),
            NatsConfig {
                swarm: config.swarm.clone(),
                ..NatsConfig::default()
            },
        ))
        .unwrap();
    let sender = a.sender();
    let mut accepted = 0u64;
    for i in 0..5_000 {
        if sender.try_send(numbered(from, to, i, 64)).is_ok() {
            accepted += 1;
        }
    }
    sender.flush();
    std::thread::sleep(Duration::from_millis(200));
    server.stop();
    for i in 5_000..6_000 {
        if sender.try_send(numbered(from, to, i, 64)).is_ok() {
            accepted += 1;
        }
    }
    drop(sender);
    let started = Instant::now();
    let s = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), ta.close()).await })
        .expect("close() returned");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2) + Duration::from_secs(5),
        "close took {took:?}"
    );
    assert_eq!(
        s.messages_acked + a.stats().undeliverable,
        accepted,
        "every accepted message is acknowledged or reported: {s:?} {:?}",
        a.stats()
    );
    assert!(s.messages_not_sent > 0, "queued ones never left: {s:?}");
}

#[test]
fn a_slow_consumer_without_faults_gets_everything_acknowledged() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = swarm();
    let a = comm();
    let b = Communicator::new(CommunicatorConfig::default().mailbox_capacity(64)).unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config))
        .unwrap();
    const N: u32 = 20_000;
    let consumer = std::thread::spawn(move || {
        for i in 0..N {
            let m = mailbox.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(seq(&m), i);
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let sender = a.sender();
    for i in 0..N {
        sender.send(numbered(from, to, i, 100)).unwrap();
    }
    drop(sender);
    consumer.join().unwrap();
    rt.block_on(ta.settle(Duration::from_secs(30))).unwrap();
    let s = ta.stats();
    assert_eq!(
        (s.messages_acked, s.undelivered()),
        (u64::from(N), 0),
        "{s:?}"
    );
}
