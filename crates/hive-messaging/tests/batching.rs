//! The flush rules: age without postponement, idle, critical, size, and the
//! statistics and metrics they produce; blocking and async interplay.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hive_messaging::{Communicator, CommunicatorConfig, FlushReason};
use hive_types::{AgentId, Message, Priority};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn a_trickle_never_postpones_the_linger_deadline() {
    // 100 messages, one every 2 ms, linger 20 ms, no size limit in reach,
    // consumer not waiting: only the age rule can flush. A timer reset by
    // each message would hold all of them until the end.
    let config = CommunicatorConfig::default()
        .linger(Duration::from_millis(20))
        .max_messages(10_000)
        .max_bytes(usize::MAX);
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..100u32 {
        sender
            .send(Message::new(a, b, i.to_le_bytes().to_vec()))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(sender);
    let stats = comm.stats();
    let age = stats.flushes_for(FlushReason::Age);
    assert!(
        age >= 4,
        "expected several age flushes during the trickle, got {age}: {stats:?}"
    );
    assert!(
        stats.batch_size.max() < 60,
        "a batch held {} messages: the deadline was pushed back",
        stats.batch_size.max()
    );
    for i in 0..100u32 {
        assert_eq!(mailbox.recv().unwrap().payload.as_ref(), &i.to_le_bytes());
    }
}

#[test]
fn an_idle_recipient_gets_a_lone_message_at_once() {
    // Linger is an hour: only the idle rule can deliver this message.
    let config = CommunicatorConfig::default().linger(Duration::from_secs(3600));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let consumer = std::thread::spawn(move || mailbox.recv_timeout(Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(50)); // let the consumer start waiting
    let sender = comm.sender();
    sender.send(Message::new(a, b, "ping")).unwrap();
    let got = consumer
        .join()
        .unwrap()
        .expect("delivered without waiting for linger");
    assert_eq!(got.payload.as_ref(), b"ping");
    assert_eq!(comm.stats().flushes_for(FlushReason::Idle), 1);
    drop(sender);
}

#[test]
fn a_waiting_consumer_gets_batches_a_sender_already_held() {
    // The message is batched while nobody waits; when the consumer starts
    // waiting, the flusher is asked to hand it over at once.
    let config = CommunicatorConfig::default().linger(Duration::from_secs(3600));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    sender.send(Message::new(a, b, "early")).unwrap();
    assert_eq!(mailbox.len(), 0, "held in the sender's batch");
    let got = mailbox.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(got.payload.as_ref(), b"early");
    assert_eq!(comm.stats().flushes_for(FlushReason::Idle), 1);
}

#[test]
fn critical_bypasses_a_half_full_batch() {
    let config = CommunicatorConfig::default().linger(Duration::from_secs(3600));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..25u8 {
        sender.send(Message::new(a, b, vec![i])).unwrap();
    }
    assert_eq!(mailbox.len(), 0, "half a batch waits");
    let alarm = Message::builder(a, b)
        .priority(Priority::Critical)
        .payload("fire")
        .build();
    sender.send(alarm).unwrap();
    assert_eq!(mailbox.len(), 26, "the critical message flushed the batch");
    // The most urgent lane first, then the others in their order.
    assert_eq!(mailbox.recv().unwrap().priority, Priority::Critical);
    for i in 0..25u8 {
        assert_eq!(mailbox.recv().unwrap().payload.as_ref(), &[i]);
    }
    assert_eq!(comm.stats().flushes_for(FlushReason::Priority), 1);
}

#[test]
fn full_batches_flush_by_size_and_bytes() {
    let config = CommunicatorConfig::default()
        .linger(Duration::from_secs(3600))
        .max_messages(10)
        .max_bytes(5 * (hive_types::ENVELOPE_BYTES + 100));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for _ in 0..10 {
        sender.send(Message::new(a, b, vec![0u8; 1])).unwrap();
    }
    assert_eq!(mailbox.len(), 10);
    for _ in 0..5 {
        sender.send(Message::new(a, b, vec![0u8; 100])).unwrap();
    }
    assert_eq!(mailbox.len(), 15);
    let stats = comm.stats();
    assert_eq!(stats.flushes_for(FlushReason::Size), 1);
    assert_eq!(stats.flushes_for(FlushReason::Bytes), 1);
    assert_eq!(stats.batch_size.count(), 2);
}

#[test]
fn async_and_blocking_ends_interoperate() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut to_async = comm.register(a).unwrap();
    let mut to_blocking = comm.register(b).unwrap();

    // blocking sender -> async receiver
    let sender = comm.sender();
    let producer = std::thread::spawn(move || {
        for i in 0..1000u32 {
            sender
                .send(Message::new(b, a, i.to_le_bytes().to_vec()))
                .unwrap();
        }
    });
    rt.block_on(async {
        for i in 0..1000u32 {
            let m = to_async.recv_async().await.unwrap();
            assert_eq!(m.payload.as_ref(), &i.to_le_bytes());
        }
    });
    producer.join().unwrap();

    // async sender -> blocking receiver
    let sender = comm.sender();
    let task = rt.spawn(async move {
        for i in 0..1000u32 {
            sender
                .send_async(Message::new(a, b, i.to_le_bytes().to_vec()))
                .await
                .unwrap();
        }
    });
    for i in 0..1000u32 {
        assert_eq!(
            to_blocking.recv().unwrap().payload.as_ref(),
            &i.to_le_bytes()
        );
    }
    rt.block_on(task).unwrap();
}

#[test]
fn statistics_reach_the_metrics_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let comm = metrics::with_local_recorder(&recorder, || {
        Communicator::new(CommunicatorConfig::default().max_messages(10)).unwrap()
    });
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for _ in 0..30 {
        sender.send(Message::new(a, b, "x")).unwrap();
    }
    for _ in 0..30 {
        mailbox.recv().unwrap();
    }
    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let k = key.key();
        let label = k
            .labels()
            .map(|l| l.value().to_string())
            .collect::<Vec<_>>()
            .join(",");
        seen.insert(format!("{}{{{}}}", k.name(), label), value);
    }
    assert_eq!(
        seen.get("hive_messaging_sent_total{}"),
        Some(&DebugValue::Counter(30))
    );
    assert_eq!(
        seen.get("hive_messaging_delivered_total{}"),
        Some(&DebugValue::Counter(30))
    );
    assert_eq!(
        seen.get("hive_messaging_batches_total{size}"),
        Some(&DebugValue::Counter(3))
    );
    match seen.get("hive_messaging_batch_size{}") {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 3),
        other => panic!("batch size histogram missing: {other:?}"),
    }
    let stats = comm.stats();
    assert_eq!((stats.sent, stats.delivered), (30, 30));
    assert_eq!(stats.batch_latency_ns.count(), 3);
}
