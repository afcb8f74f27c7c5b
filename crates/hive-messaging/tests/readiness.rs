//! The seams a scheduler uses to run a consumer without a blocked thread:
//! the ready hook, the pending priority, idle/busy declarations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hive_messaging::{Communicator, CommunicatorConfig, HiveError};
use hive_types::{AgentId, Message, Priority};

fn held_batches() -> CommunicatorConfig {
    CommunicatorConfig::default()
        .linger(Duration::from_secs(60))
        .max_messages(1000)
}

#[test]
fn ready_hook_runs_when_a_batch_arrives_and_only_one_can_be_set() {
    let comm = Communicator::new(held_batches()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    mailbox
        .on_ready(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(
        matches!(mailbox.on_ready(|| {}), Err(HiveError::AlreadySet { .. })),
        "a second hook is refused"
    );

    let sender = comm.sender();
    sender.send(Message::new(a, b, &b"held"[..])).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the batch is still held");
    sender.flush();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        mailbox.try_recv().unwrap().unwrap().payload.as_ref(),
        b"held"
    );
}

#[test]
fn pending_priority_reports_the_highest_queued_since_last_read() {
    let comm = Communicator::new(held_batches()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mailbox = comm.register(b).unwrap();
    let pending = mailbox.probe();
    assert_eq!(pending.take_priority(), Priority::Low, "nothing queued yet");

    let sender = comm.sender();
    for p in [Priority::Low, Priority::High, Priority::Normal] {
        sender
            .send(Message::builder(a, b).priority(p).build())
            .unwrap();
    }
    sender.flush();
    assert_eq!(pending.take_priority(), Priority::High);
    assert_eq!(pending.take_priority(), Priority::Low, "reading resets it");
}

#[test]
fn declare_idle_says_whether_mail_is_waiting() {
    let comm = Communicator::new(held_batches()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    assert!(!mailbox.declare_idle(), "empty: the consumer may stop");

    let sender = comm.sender();
    sender.send(Message::new(a, b, &b"x"[..])).unwrap();
    // An idle consumer is flushed to at once, without the 60 s linger.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while mailbox.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "idle flush never came"
        );
        std::thread::yield_now();
    }
    mailbox.declare_busy();
    assert!(mailbox.declare_idle(), "mail waiting: run again");
    assert!(mailbox.try_recv().is_ok());

    assert!(!mailbox.is_closed());
    comm.close();
    assert!(mailbox.is_closed());
    assert!(mailbox.declare_idle(), "closed: run once more to see it");
}
