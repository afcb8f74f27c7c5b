//! Mailbox semantics: priority lanes, aging, time to live, depth and lag,
//! and the bounded store of undelivered messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hive_messaging::{Communicator, CommunicatorConfig, UndeliveredReason};
use hive_types::{AgentId, Message, Priority};

fn held() -> CommunicatorConfig {
    // Batches wait for an explicit flush: the test decides what is queued.
    CommunicatorConfig::default().linger(Duration::from_secs(3600))
}

fn tagged(from: AgentId, to: AgentId, p: Priority, tag: u32) -> Message {
    Message::builder(from, to)
        .priority(p)
        .payload(tag.to_le_bytes().to_vec())
        .build()
}

fn tag(m: &Message) -> u32 {
    u32::from_le_bytes(m.payload.as_ref().try_into().unwrap())
}

#[test]
fn urgent_mail_comes_first_and_each_lane_keeps_its_order() {
    let comm = Communicator::new(held()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let (low, high) = (comm.sender(), comm.sender());
    for i in 0..2_000 {
        low.send(tagged(a, b, Priority::Low, i)).unwrap();
    }
    for i in 0..10 {
        high.send(tagged(a, b, Priority::High, 10_000 + i)).unwrap();
    }
    low.flush();
    high.flush();
    let critical = comm.sender();
    critical
        .send(tagged(a, b, Priority::Critical, 99_999))
        .unwrap();
    let order: Vec<(Priority, u32)> = (0..2_011)
        .map(|_| mailbox.recv().unwrap())
        .map(|m| (m.priority, tag(&m)))
        .collect();
    assert_eq!(order[0], (Priority::Critical, 99_999), "behind 2,000 Low");
    let highs: Vec<u32> = order[1..11].iter().map(|(_, t)| *t).collect();
    assert_eq!(highs, (10_000..10_010).collect::<Vec<_>>());
    let lows: Vec<u32> = order[11..].iter().map(|(_, t)| *t).collect();
    assert_eq!(lows, (0..2_000).collect::<Vec<_>>(), "FIFO within a lane");
}

#[test]
fn a_critical_message_overtakes_mail_already_read_ahead() {
    let comm = Communicator::new(held()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..40 {
        sender.send(tagged(a, b, Priority::Low, i)).unwrap();
    }
    sender.flush();
    assert_eq!(tag(&mailbox.recv().unwrap()), 0); // the batch is read ahead now
    sender
        .send(tagged(a, b, Priority::Critical, 7_777))
        .unwrap();
    assert_eq!(tag(&mailbox.recv().unwrap()), 7_777);
    assert_eq!(tag(&mailbox.recv().unwrap()), 1);
}

#[test]
fn aging_gives_old_low_mail_turns_under_a_stream_of_high_mail() {
    let config = held().aging_threshold(Duration::from_millis(20));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..20 {
        sender.send(tagged(a, b, Priority::Low, i)).unwrap();
    }
    sender.flush();
    std::thread::sleep(Duration::from_millis(40));
    for i in 0..1_000 {
        sender
            .send(tagged(a, b, Priority::High, 1_000 + i))
            .unwrap();
    }
    sender.flush();
    let first_200: Vec<Priority> = (0..200).map(|_| mailbox.recv().unwrap().priority).collect();
    let lows = first_200.iter().filter(|p| **p == Priority::Low).count();
    assert_eq!(lows, 20, "every aged Low message went within 200 turns");

    // Without aging the same Low mail waits for all the High mail.
    let comm = Communicator::new(held().aging_threshold(Duration::from_secs(60))).unwrap();
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..20 {
        sender.send(tagged(a, b, Priority::Low, i)).unwrap();
    }
    sender.flush();
    for i in 0..1_000 {
        sender
            .send(tagged(a, b, Priority::High, 1_000 + i))
            .unwrap();
    }
    sender.flush();
    let first: Vec<Priority> = (0..1_000)
        .map(|_| mailbox.recv().unwrap().priority)
        .collect();
    assert!(first.iter().all(|p| *p == Priority::High));
}

#[test]
fn expired_messages_are_not_handed_out_but_reported() {
    let comm = Communicator::new(held()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..5 {
        let m = Message::builder(a, b)
            .ttl(Duration::from_millis(1))
            .payload(vec![i])
            .build();
        sender.send(m).unwrap();
    }
    sender
        .send(Message::builder(a, b).payload(vec![9]).build())
        .unwrap();
    sender.flush();
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(mailbox.recv().unwrap().payload.as_ref(), &[9]);
    assert!(mailbox.try_recv().unwrap().is_none());
    let stats = comm.stats();
    assert_eq!(stats.undeliverable_for(UndeliveredReason::Expired), 5);
    assert_eq!(stats.delivered, 1);
    let expired = comm.take_undelivered();
    assert_eq!(expired.len(), 5);
    assert!(expired
        .iter()
        .all(|u| u.reason == UndeliveredReason::Expired));
}

#[test]
fn depth_and_lag_show_how_far_behind_a_consumer_is() {
    let comm = Communicator::new(held()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let probe = mailbox.probe();
    assert_eq!((probe.depth(), probe.lag()), (0, Duration::ZERO));
    let sender = comm.sender();
    for i in 0..10 {
        sender.send(tagged(a, b, Priority::Normal, i)).unwrap();
    }
    sender.flush();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(probe.depth(), 10);
    assert!(
        probe.lag() >= Duration::from_millis(30),
        "{:?}",
        probe.lag()
    );
    mailbox.recv().unwrap(); // the rest is read ahead now
    assert_eq!(mailbox.len(), 9);
    let depth = &comm.stats().mailboxes[0];
    assert_eq!(depth.queued, 9, "read-ahead still counts as waiting");
    assert!(depth.lag >= Duration::from_millis(30));
    for _ in 0..9 {
        mailbox.recv().unwrap();
    }
    assert_eq!((probe.depth(), probe.lag()), (0, Duration::ZERO));
}

#[test]
fn the_undelivered_store_is_bounded_and_counts_what_it_evicts() {
    let config = held().dead_letter_capacity(10).dead_letter_bytes(1_000);
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for _ in 0..4_000 {
        sender.send(Message::new(a, b, vec![0u8; 200])).unwrap();
    }
    sender.flush();
    drop(mailbox);
    let stats = comm.stats();
    assert_eq!(stats.undeliverable, 4_000, "counted from the statistics");
    let kept = comm.take_undelivered();
    assert_eq!(kept.len(), 5, "1,000 bytes hold five 200-byte payloads");
    assert_eq!(stats.undelivered_evicted, 3_995);
}

#[test]
fn mailbox_room_frees_as_messages_are_handed_out() {
    let config = CommunicatorConfig::default().mailbox_capacity(8);
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..8 {
        sender.try_send(tagged(a, b, Priority::Normal, i)).unwrap();
    }
    sender.flush();
    assert!(sender
        .try_send(tagged(a, b, Priority::Normal, 8))
        .unwrap_err()
        .is_full());
    mailbox.recv().unwrap();
    mailbox.recv().unwrap();
    sender.try_send(tagged(a, b, Priority::Normal, 8)).unwrap();
    sender.try_send(tagged(a, b, Priority::Normal, 9)).unwrap();
    assert!(
        sender
            .try_send(tagged(a, b, Priority::Normal, 10))
            .unwrap_err()
            .is_full(),
        "read ahead is still held: never more than capacity"
    );
}
