//! Request and reply, and the timeouts of sends and broadcasts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use hive_messaging::{Communicator, CommunicatorConfig, UndeliveredReason};
use hive_types::{AgentId, HiveError, Message, MessageKind, Recipient};

/// An agent on its own thread that answers every request with its payload
/// doubled, after `delay`.
fn doubler(comm: &Communicator, delay: Duration) -> (AgentId, std::thread::JoinHandle<u32>) {
    let me = AgentId::random();
    let mut mailbox = comm.register(me).unwrap();
    let sender = comm.sender();
    let thread = std::thread::spawn(move || {
        let mut answered = 0;
        while let Ok(m) = mailbox.recv() {
            std::thread::sleep(delay);
            let doubled: Vec<u8> = m.payload.iter().map(|b| b * 2).collect();
            sender.send(m.reply(me, doubled)).unwrap();
            answered += 1;
        }
        answered
    });
    (me, thread)
}

#[test]
fn a_request_gets_its_reply_without_any_flush() {
    // A long linger: only the request rule can make these leave at once.
    let config = CommunicatorConfig::default().linger(Duration::from_secs(3600));
    let comm = Communicator::new(config).unwrap();
    let (agent, thread) = doubler(&comm, Duration::ZERO);
    let asker = comm.sender();
    for i in 1..=100u8 {
        let reply = asker
            .request(
                Message::request(AgentId::nil(), agent, vec![i]),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(reply.kind, MessageKind::Response);
        assert_eq!(reply.payload.as_ref(), &[i * 2]);
    }
    let stats = comm.stats();
    assert_eq!((stats.replies, stats.pending_requests), (100, 0));
    comm.close();
    assert_eq!(thread.join().unwrap(), 100);
}

#[test]
fn a_late_reply_is_counted_and_dropped() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let (agent, _thread) = doubler(&comm, Duration::from_millis(200));
    let err = comm
        .sender()
        .request(
            Message::request(AgentId::nil(), agent, vec![1]),
            Duration::from_millis(20),
        )
        .unwrap_err();
    assert!(
        matches!(err, HiveError::Timeout { what: "reply", .. }),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while comm.stats().undeliverable_for(UndeliveredReason::LateReply) == 0 {
        assert!(Instant::now() < deadline, "the late reply was never seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let late = comm.take_undelivered();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].message.payload.as_ref(), &[2]);
    assert_eq!(comm.stats().replies, 0);
}

#[test]
fn async_requests_time_out_on_any_executor_without_its_timer() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let (agent, _thread) = doubler(&comm, Duration::ZERO);
    // No time driver: the communicator's own timer enforces the deadline.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sender = comm.sender();
    runtime.block_on(async {
        let reply = sender
            .request_async(
                Message::request(AgentId::nil(), agent, vec![21]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(reply.payload.as_ref(), &[42]);
        let timeout = Duration::from_millis(20);
        let silent = comm.register(AgentId::random()).unwrap();
        let err = sender
            .request_async(
                Message::request(AgentId::nil(), silent.agent(), vec![1]),
                timeout,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, HiveError::Timeout { .. }));
    });
}

#[test]
fn sends_and_broadcasts_into_full_mailboxes_give_up_on_time() {
    let config = CommunicatorConfig::default().mailbox_capacity(2);
    let comm = Communicator::new(config).unwrap();
    let (a, b, c) = (AgentId::random(), AgentId::random(), AgentId::random());
    let _mb = comm.register(b).unwrap();
    let _mc = comm.register(c).unwrap();
    let sender = comm.sender();
    for to in [b, c] {
        for _ in 0..2 {
            sender.send(Message::new(a, to, "fill")).unwrap();
        }
    }
    let started = Instant::now();
    let refused = sender
        .send_timeout(Message::new(a, b, "more"), Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(refused.error(), HiveError::Timeout { .. }));
    assert_eq!(refused.into_inner().payload.as_ref(), b"more");

    let shout = Message::builder(a, Recipient::Broadcast)
        .payload("all")
        .build();
    let report = sender
        .broadcast_timeout(shout.clone(), Duration::from_millis(30))
        .unwrap();
    assert_eq!(report.reached, 0);
    assert_eq!(report.missed.len(), 2);
    let refused = sender
        .send_timeout(shout, Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(refused.error(), HiveError::Timeout { .. }));
    // Before timeouts applied to broadcasts this call never returned; the
    // bound only tells a hang from a slow machine.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_request_or_try_send_to_a_broadcast_is_refused_as_such() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let _listener = comm.register(AgentId::random()).unwrap();
    let sender = comm.sender();
    let shout = || Message::request(AgentId::nil(), Recipient::Broadcast, "who?");
    assert!(matches!(
        sender.request(shout(), Duration::from_secs(1)),
        Err(HiveError::NeedsOneRecipient { .. })
    ));
    let rejected = sender.try_send(shout()).unwrap_err();
    assert!(matches!(
        rejected.error(),
        HiveError::NeedsOneRecipient { .. }
    ));
    assert_eq!(
        rejected.value().payload.as_ref(),
        b"who?",
        "the message comes back"
    );
}
