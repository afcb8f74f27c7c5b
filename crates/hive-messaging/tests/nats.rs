//! The NATS transport against real `nats-server` processes on loopback:
//! order over a million messages, broadcast, queue groups, batches larger
//! than `max_payload`, and a cluster (outages: `nats_outage.rs`).
//! Locally a missing `nats-server` skips these tests with a note; with
//! `HIVE_CI=1` (set by `.ci/run`, which installs it) it fails them.
#![cfg(feature = "nats")]
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

use hive_messaging::nats::NatsTransport;
use hive_messaging::Communicator;
use hive_types::{AgentId, Message, MessageKind, Recipient};
use support::nats::{free_port, nats_server_binary, swarm, Server};
use support::{comm, runtime, seq};

#[test]
fn a_million_messages_cross_nats_in_order() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = swarm();
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config))
        .unwrap();
    const N: u32 = 1_000_000;
    let sender = a.sender();
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            let mut p = i.to_le_bytes().to_vec();
            p.extend_from_slice(b" progress report: shard steady");
            sender.send(Message::new(from, to, p)).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut next = 0;
    while next < N {
        mailbox.recv_many(&mut buf, 1024).unwrap();
        for m in buf.drain(..) {
            assert_eq!(seq(&m), next);
            next += 1;
        }
    }
    producer.join().unwrap();
    rt.block_on(ta.settle(Duration::from_secs(10))).unwrap();
    let stats = ta.stats();
    assert_eq!(
        (stats.messages_acked, stats.undelivered()),
        (u64::from(N), 0),
        "{stats:?}"
    );
    assert!(
        stats.bytes_sent < stats.raw_bytes_sent,
        "compressed: {stats:?}"
    );
    assert!(
        stats.frames_sent < u64::from(N) / 10,
        "batched: {} frames",
        stats.frames_sent
    );
    assert_eq!(tb.stats().messages_received, u64::from(N));
}

#[test]
fn broadcast_reaches_every_process() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = swarm();
    let comms: Vec<Communicator> = (0..3).map(|_| comm()).collect();
    let agents: Vec<AgentId> = (0..3).map(|_| AgentId::random()).collect();
    let mut mailboxes: Vec<_> = comms
        .iter()
        .zip(&agents)
        .map(|(c, a)| c.register(*a).unwrap())
        .collect();
    let _transports: Vec<_> = comms
        .iter()
        .map(|c| {
            rt.block_on(NatsTransport::connect(c, &server.url(), config.clone()))
                .unwrap()
        })
        .collect();
    let hello = Message::builder(agents[0], Recipient::Broadcast)
        .kind(MessageKind::Broadcast)
        .payload("everyone")
        .build();
    comms[0].sender().broadcast(hello).unwrap();
    for mb in &mut mailboxes[1..] {
        let m = mb.recv_timeout(Duration::from_secs(10));
        let m = m.unwrap_or_else(|e| {
            panic!(
                "{e}: {:?}",
                _transports.iter().map(|t| t.stats()).collect::<Vec<_>>()
            )
        });
        assert_eq!(m.payload.as_ref(), b"everyone");
    }
    assert_eq!(
        mailboxes[0].try_recv().unwrap(),
        None,
        "no echo to the sender"
    );
}

#[test]
fn a_queue_group_spreads_work_over_its_members() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let config = swarm();
    let (front, w1, w2) = (comm(), comm(), comm());
    let (m1, m2) = (AgentId::random(), AgentId::random());
    let mut boxes = [w1.register(m1).unwrap(), w2.register(m2).unwrap()];
    let t1 = rt
        .block_on(NatsTransport::connect(&w1, &server.url(), config.clone()))
        .unwrap();
    let t2 = rt
        .block_on(NatsTransport::connect(&w2, &server.url(), config.clone()))
        .unwrap();
    rt.block_on(t1.join_group("resize", m1)).unwrap();
    rt.block_on(t2.join_group("resize", m2)).unwrap();
    let tf = rt
        .block_on(NatsTransport::connect(&front, &server.url(), config))
        .unwrap();
    let group = tf.group_address("resize");
    let sender = front.sender();
    let me = AgentId::random();
    for i in 0..2000u32 {
        sender
            .send(Message::new(me, group, i.to_le_bytes().to_vec()))
            .unwrap();
        if i % 10 == 0 {
            sender.flush(); // many small frames, so both members get some
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    sender.flush();
    let mut counts = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(20);
    while counts.iter().sum::<usize>() < 2000 {
        assert!(Instant::now() < deadline, "only {counts:?} arrived");
        for (i, b) in boxes.iter_mut().enumerate() {
            while let Ok(Some(_)) = b.try_recv() {
                counts[i] += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        counts[0] > 100 && counts[1] > 100,
        "work spread: {counts:?}"
    );
    rt.block_on(tf.settle(Duration::from_secs(10))).unwrap();
    assert_eq!(tf.stats().messages_acked, 2000);
}

#[test]
fn a_batch_larger_than_max_payload_arrives_whole() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("hive-nats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("small.conf");
    std::fs::write(&conf, "max_payload: 65536\n").unwrap();
    let server = Server::start(
        &bin,
        free_port(),
        &["-c".to_string(), conf.display().to_string()],
    );
    let rt = runtime();
    let config = swarm();
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config))
        .unwrap();
    assert_eq!(ta.max_payload(), 65536);
    // 400 incompressible 2 KiB payloads: about 800 KiB in one batch.
    let batch: Vec<Message> = (0..400u32)
        .map(|i| {
            Message::new(from, to, {
                let mut p = i.to_le_bytes().to_vec();
                p.extend((0..2044).map(|_| fastrand::u8(..)));
                p
            })
        })
        .collect();
    a.sender().send_many(batch).unwrap();
    for i in 0..400 {
        assert_eq!(
            seq(&mailbox.recv_timeout(Duration::from_secs(10)).unwrap()),
            i
        );
    }
    rt.block_on(ta.settle(Duration::from_secs(10))).unwrap();
    let s = ta.stats();
    assert_eq!((s.messages_acked, s.undelivered()), (400, 0));
    assert!(
        s.frames_sent >= 13,
        "split into frames under 64 KiB: {} frames",
        s.frames_sent
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agents_on_different_servers_of_a_cluster_talk() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes: Vec<String> = ports
        .iter()
        .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
        .collect();
    let servers: Vec<Server> = ports
        .iter()
        .map(|(p, c)| {
            Server::start(
                &bin,
                *p,
                &[
                    "--cluster_name".into(),
                    "hive".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{c}"),
                    "--routes".into(),
                    routes.join(","),
                ],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // routes form
    let rt = runtime();
    let config = swarm();
    let (a, b) = (comm(), comm());
    let (x, y) = (AgentId::random(), AgentId::random());
    let mut on_b = b.register(y).unwrap();
    let mut on_a = a.register(x).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(
            &a,
            &servers[0].url(),
            config.clone(),
        ))
        .unwrap();
    let tb = rt
        .block_on(NatsTransport::connect(&b, &servers[2].url(), config))
        .unwrap();
    // Interest propagates over the routes; retry until it has.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        a.sender().send(Message::request(x, y, "ping")).unwrap();
        if let Ok(m) = on_b.recv_timeout(Duration::from_millis(300)) {
            b.sender().send(m.reply(y, "pong")).unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "no route through the cluster");
    }
    let pong = on_a.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(pong.payload.as_ref(), b"pong");
    rt.block_on(ta.settle(Duration::from_secs(10))).unwrap();
    rt.block_on(tb.settle(Duration::from_secs(10))).unwrap();
    assert!(ta.stats().messages_acked >= 1 && tb.stats().messages_acked >= 1);
}

#[test]
fn credentials_go_through_the_connect_options() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(
        &bin,
        free_port(),
        &["--auth".into(), "s3cret-swarm-token".into()],
    );
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let config = swarm();
    let refused = rt.block_on(NatsTransport::connect(&a, &server.url(), config.clone()));
    assert!(refused.is_err(), "no token, no connection");
    let with_token = || async_nats::ConnectOptions::with_token("s3cret-swarm-token".into());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect_with(
            &a,
            &server.url(),
            with_token(),
            config.clone(),
        ))
        .unwrap();
    let client = rt
        .block_on(with_token().no_echo().connect(server.url()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::with_client(&b, client, config))
        .unwrap();
    a.sender()
        .send(Message::new(from, to, "authenticated"))
        .unwrap();
    let m = mailbox.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(m.payload.as_ref(), b"authenticated");
    rt.block_on(ta.settle(Duration::from_secs(10))).unwrap();
}

#[test]
fn a_request_from_outside_any_agent_gets_its_reply_across_nats() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let server = Server::start(&bin, free_port(), &[]);
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let y = AgentId::random();
    let mut on_b = b.register(y).unwrap();
    let config = swarm();
    let _ta = rt
        .block_on(NatsTransport::connect(&a, &server.url(), config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(&b, &server.url(), config))
        .unwrap();
    // The program itself asks: no agent of `a` is the sender.
    let reply_address = a.reply_address();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answering = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(request) = on_b.recv_timeout(Duration::from_millis(50)) {
                    assert_eq!(request.sender, reply_address);
                    b.sender().send(request.reply(y, "pong")).unwrap();
                }
            }
        })
    };
    // Subscriptions propagate: ask again until one gets through.
    let deadline = Instant::now() + Duration::from_secs(15);
    let pong = loop {
        let asked = a.sender().request(
            Message::request(reply_address, y, "ping"),
            Duration::from_millis(500),
        );
        match asked {
            Ok(pong) => break pong,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
    };
    assert_eq!(pong.payload.as_ref(), b"pong");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    answering.join().unwrap();
}
