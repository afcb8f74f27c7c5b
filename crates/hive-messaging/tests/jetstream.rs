//! Durable agent mail over JetStream, against a real `nats-server -js`
//! started by the tests in a temporary store: delivery and
//! acknowledgement after handling, redelivery of a failed frame, the dead
//! letters, a server restart with file storage. The crash of a consuming
//! process is in `jetstream_crash.rs`, the cluster in `jetstream_cluster.rs`.
#![cfg(feature = "jetstream")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use hive_messaging::nats::NatsConfig;
use hive_types::{AgentId, Message};
use support::nats::{connect, durable_swarm, nats_server_binary, JetStreamServer};
use support::{comm, numbered, runtime, seq, wait_until};

#[test]
fn mail_is_stored_delivered_and_acknowledged_after_handling() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let js = JetStreamServer::start(&bin);
    let rt = runtime();
    let config = durable_swarm();
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = connect(rt.handle(), &a, &js.server.url(), &config);
    let tb = connect(rt.handle(), &b, &js.server.url(), &config);
    const N: u32 = 20_000;
    let sender = a.sender();
    for i in 0..N {
        sender.send(numbered(from, to, i, 16)).unwrap();
    }
    sender.flush();
    let mut next = 0;
    let mut held = Vec::new();
    while next < N {
        let m = mailbox.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(seq(&m), next);
        let receipt = m.receipt.as_ref().expect("durable mail carries a receipt");
        assert!(!receipt.redelivered());
        next += 1;
        // Hold the first message: its frame stays unacknowledged.
        if next == 1 {
            held.push(m);
        }
    }
    rt.block_on(ta.settle(Duration::from_secs(10))).unwrap();
    let sent = ta.stats();
    assert_eq!(sent.messages_acked, u64::from(N), "{sent:?}");
    wait_until("the other frames to be acknowledged", || {
        let s = tb.durable_stats().unwrap();
        s.pending == 1 && s.acknowledged >= 1
    });
    drop(held);
    wait_until("the held frame to be acknowledged", || {
        tb.durable_stats().unwrap().pending == 0
    });
    let s = tb.durable_stats().unwrap();
    assert_eq!(
        (s.failed, s.redelivered, s.dead_lettered),
        (0, 0, 0),
        "{s:?}"
    );
    rt.block_on(ta.close());
    rt.block_on(tb.close());
}

#[test]
fn a_failed_frame_comes_back_marked_and_then_goes_to_the_dead_letters() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let js = JetStreamServer::start(&bin);
    let rt = runtime();
    let mut config = durable_swarm();
    if let Some(d) = config.durable.as_mut() {
        d.max_deliver = 3;
    }
    let (a, b) = (comm(), comm());
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    let ta = connect(rt.handle(), &a, &js.server.url(), &config);
    let tb = connect(rt.handle(), &b, &js.server.url(), &config);
    a.sender().send(Message::new(from, to, "poison")).unwrap();
    a.sender().flush();
    // Three deliveries, each failed by the handler.
    for attempt in 1..=3u32 {
        let m = mailbox.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(&m.payload[..], b"poison");
        let receipt = m.receipt.as_ref().unwrap();
        assert_eq!(receipt.deliveries(), attempt);
        assert_eq!(receipt.redelivered(), attempt > 1);
        receipt.fail();
    }
    wait_until("the frame to be dead-lettered", || {
        tb.durable_stats().unwrap().dead_lettered == 1
    });
    assert!(mailbox.recv_timeout(Duration::from_millis(300)).is_err());
    let s = tb.durable_stats().unwrap();
    assert_eq!((s.failed, s.redelivered), (3, 2), "{s:?}");
    // The frame is on the dead-letter subject, with why.
    let dead = tb.dead_letter_subject(&to.to_string());
    let stream = config.durable.as_ref().unwrap().stream_name(&config.swarm);
    let (headers, payload) = rt.block_on(async {
        let client = async_nats::connect(js.server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream).await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: dead,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.fetch().max_messages(1).messages().await.unwrap();
        let m = messages.next().await.unwrap().unwrap();
        (m.headers.clone().unwrap(), m.payload.clone())
    });
    assert_eq!(
        headers.get("Hive-Reason").map(|v| v.as_str()),
        Some("max deliveries")
    );
    assert_eq!(
        headers.get("Hive-Deliveries").map(|v| v.as_str()),
        Some("4")
    );
    let frame = hive_messaging::wire::FrameDecoder::new(Default::default())
        .unwrap()
        .decode(&payload)
        .unwrap();
    let hive_messaging::wire::FrameBody::Messages(messages) = frame.body else {
        panic!("a message frame");
    };
    assert_eq!(&messages[0].payload[..], b"poison");
    rt.block_on(ta.close());
    rt.block_on(tb.close());
}

#[test]
fn a_server_restart_with_file_storage_loses_nothing() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let mut js = JetStreamServer::start(&bin);
    let rt = runtime();
    let config = NatsConfig {
        ack_timeout: Duration::from_secs(30),
        ..durable_swarm()
    };
    let (a, b) = (comm(), comm());
    let mailbox = b.register(AgentId::random()).unwrap();
    let ta = connect(rt.handle(), &a, &js.server.url(), &config);
    let tb = connect(rt.handle(), &b, &js.server.url(), &config);
    let restart = || js.server.restart();
    support::durable::loses_nothing(&rt, (&a, &ta), mailbox, 200_000, (50_000, restart));
    eprintln!(
        "server restart: publisher {:?}, consumer {:?}",
        ta.durable_stats(),
        tb.durable_stats()
    );
    rt.block_on(ta.close());
    rt.block_on(tb.close());
}

#[test]
fn a_group_shares_one_durable_consumer_between_its_member_processes() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let js = JetStreamServer::start(&bin);
    let rt = runtime();
    let config = durable_swarm();
    let (front, w1, w2) = (comm(), comm(), comm());
    let (m1, m2) = (AgentId::random(), AgentId::random());
    let mut boxes = [w1.register(m1).unwrap(), w2.register(m2).unwrap()];
    let url = js.server.url();
    let t1 = connect(rt.handle(), &w1, &url, &config);
    let t2 = connect(rt.handle(), &w2, &url, &config);
    rt.block_on(t1.join_group("resize", m1)).unwrap();
    rt.block_on(t2.join_group("resize", m2)).unwrap();
    let tf = connect(rt.handle(), &front, &url, &config);
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
    let mut seen = HashSet::new();
    let mut counts = [0usize; 2];
    wait_until("every message to reach a member", || {
        for (i, b) in boxes.iter_mut().enumerate() {
            while let Ok(Some(m)) = b.try_recv() {
                assert!(m.receipt.is_some());
                seen.insert(seq(&m));
                counts[i] += 1;
            }
        }
        seen.len() == 2000
    });
    assert!(counts[0] > 0 && counts[1] > 0, "work spread: {counts:?}");
    rt.block_on(tf.settle(Duration::from_secs(10))).unwrap();
    assert_eq!(tf.stats().messages_acked, 2000);

    // A member that leaves stops reading the group: the rest goes to the
    // other, none is pulled by the process that no longer hosts a member.
    w1.unregister(m1).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the transport follows
    let failed_before = t1.durable_stats().unwrap().failed;
    for i in 2000..4000u32 {
        sender
            .send(Message::new(me, group, i.to_le_bytes().to_vec()))
            .unwrap();
        if i % 10 == 0 {
            sender.flush();
        }
    }
    sender.flush();
    let [_, mailbox] = &mut boxes;
    wait_until("the rest to reach the remaining member", || {
        while let Ok(Some(m)) = mailbox.try_recv() {
            seen.insert(seq(&m));
        }
        seen.len() == 4000
    });
    assert_eq!(t1.durable_stats().unwrap().failed, failed_before);
    for t in [t1, t2, tf] {
        rt.block_on(t.close());
    }
}
