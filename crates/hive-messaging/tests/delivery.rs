//! Delivery guarantees of the communicator: order, exactly-once, bounds,
//! close, unknown and departed recipients, broadcast.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hive_messaging::{Communicator, CommunicatorConfig, FlushReason, Recipient, UndeliveredReason};
use hive_types::{AgentId, HiveError, Message, MessageKind};

fn seq_message(from: AgentId, to: AgentId, sender: u32, seq: u32) -> Message {
    let mut payload = sender.to_le_bytes().to_vec();
    payload.extend_from_slice(&seq.to_le_bytes());
    Message::new(from, to, payload)
}

fn decode(m: &Message) -> (u32, u32) {
    let p = m.payload.as_ref();
    let sender = u32::from_le_bytes(p[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(p[4..8].try_into().unwrap());
    (sender, seq)
}

#[test]
fn order_is_kept_per_sender_and_recipient() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    let producer = std::thread::spawn(move || {
        for i in 0..20_000 {
            sender.send(seq_message(a, b, 0, i)).unwrap();
        }
    });
    for i in 0..20_000 {
        assert_eq!(decode(&mailbox.recv().unwrap()), (0, i));
    }
    producer.join().unwrap();
}

#[test]
fn eight_senders_to_four_recipients_deliver_each_message_exactly_once() {
    const SENDERS: u32 = 8;
    const PER_SENDER: u32 = 100_000;
    let config = CommunicatorConfig::default().mailbox_capacity(512);
    let comm = Communicator::new(config).unwrap();
    let recipients: Vec<AgentId> = (0..4).map(|_| AgentId::random()).collect();
    let consumers: Vec<_> = recipients
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let mut mailbox = comm.register(r).unwrap();
            std::thread::spawn(move || {
                // Recipient i gets seq i, i+4, i+8, ... from every sender.
                let mut next = vec![i as u32; SENDERS as usize];
                let mut buf = Vec::with_capacity(256);
                let mut received = 0u64;
                while let Ok(n) = mailbox.recv_many(&mut buf, 256) {
                    for m in buf.drain(..) {
                        let (s, seq) = decode(&m);
                        let expected = &mut next[s as usize];
                        assert_eq!(seq, *expected, "sender {s} out of order or duplicated");
                        *expected += 4; // each sender round-robins over 4 recipients
                    }
                    received += n as u64;
                }
                (received, next)
            })
        })
        .collect();
    let producers: Vec<_> = (0..SENDERS)
        .map(|s| {
            let sender = comm.sender();
            let recipients = recipients.clone();
            std::thread::spawn(move || {
                let me = AgentId::random();
                for seq in 0..PER_SENDER {
                    let to = recipients[(seq % 4) as usize];
                    sender.send(seq_message(me, to, s, seq)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    comm.close();
    let mut total = 0;
    for (i, c) in consumers.into_iter().enumerate() {
        let (received, next) = c.join().unwrap();
        total += received;
        for (s, n) in next.iter().enumerate() {
            assert_eq!(
                *n,
                PER_SENDER + i as u32,
                "recipient {i} missed messages of sender {s}"
            );
        }
    }
    assert_eq!(total, u64::from(SENDERS * PER_SENDER));
    let stats = comm.stats();
    assert_eq!(stats.sent, u64::from(SENDERS * PER_SENDER));
    assert_eq!(stats.delivered, stats.sent);
    assert_eq!(stats.undeliverable, 0);
    assert!(
        stats.batches() < stats.sent,
        "messages travelled in batches"
    );
}

#[test]
fn try_send_on_a_full_mailbox_hands_the_message_back() {
    let comm = Communicator::new(CommunicatorConfig::default().mailbox_capacity(4)).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..4 {
        sender.try_send(seq_message(a, b, 0, i)).unwrap();
    }
    let refused = sender.try_send(seq_message(a, b, 0, 99)).unwrap_err();
    assert!(refused.is_full(), "{refused}");
    assert_eq!(decode(&refused.into_inner()), (0, 99));
    assert!(mailbox.len() <= 4, "the queue never exceeds its capacity");
}

#[test]
fn send_waits_for_room_and_times_out() {
    let comm = Communicator::new(CommunicatorConfig::default().mailbox_capacity(2)).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    sender.send(seq_message(a, b, 0, 0)).unwrap();
    sender.send(seq_message(a, b, 0, 1)).unwrap();
    let err = sender
        .send_timeout(seq_message(a, b, 0, 2), Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err.error(), HiveError::Timeout { .. }), "{err}");
    // Room frees as the consumer drains; a blocked send then completes.
    let producer = std::thread::spawn(move || {
        for i in 2..50 {
            sender.send(seq_message(a, b, 0, i)).unwrap();
        }
    });
    for i in 0..50 {
        assert_eq!(decode(&mailbox.recv().unwrap()).1, i);
    }
    producer.join().unwrap();
}

#[test]
fn close_delivers_everything_then_says_closed() {
    let config = CommunicatorConfig::default()
        .linger(Duration::from_secs(60))
        .max_messages(1000);
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mut mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..1000 {
        sender.send(seq_message(a, b, 0, i)).unwrap();
    }
    comm.close();
    let refused = sender.send(seq_message(a, b, 0, 1000)).unwrap_err();
    assert!(refused.is_closed());
    for i in 0..1000 {
        assert_eq!(decode(&mailbox.recv().unwrap()).1, i);
    }
    assert!(matches!(mailbox.recv(), Err(HiveError::Closed { .. })));
    assert_eq!(comm.stats().flushes_for(FlushReason::Close), 1);
}

#[test]
fn unknown_recipient_is_a_typed_error_with_the_message_back() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let nobody = AgentId::random();
    let err = comm
        .sender()
        .send(Message::new(AgentId::random(), nobody, "hi"))
        .unwrap_err();
    assert!(matches!(err.error(), HiveError::UnknownAgent(id) if *id == nobody));
    assert_eq!(err.into_inner().payload.as_ref(), b"hi");
}

#[test]
fn messages_to_a_departed_agent_come_back_as_undeliverable() {
    let config = CommunicatorConfig::default().linger(Duration::from_secs(60));
    let comm = Communicator::new(config).unwrap();
    let (a, b) = (AgentId::random(), AgentId::random());
    let mailbox = comm.register(b).unwrap();
    let sender = comm.sender();
    for i in 0..5 {
        sender.send(seq_message(a, b, 0, i)).unwrap(); // held in the sender's batch
    }
    drop(mailbox);
    let err = sender.send(seq_message(a, b, 0, 5)).unwrap_err();
    assert!(matches!(err.error(), HiveError::UnknownAgent(_)));
    let lost: Vec<u32> = comm
        .take_undelivered()
        .iter()
        .map(|u| {
            assert_eq!(u.reason, UndeliveredReason::NoRecipient);
            decode(&u.message).1
        })
        .collect();
    assert_eq!(lost, vec![0, 1, 2, 3, 4]);
    let stats = comm.stats();
    assert_eq!(stats.undeliverable, 5);
    assert_eq!(stats.undeliverable_for(UndeliveredReason::NoRecipient), 5);
}

#[test]
fn broadcast_reaches_every_other_agent() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let agents: Vec<AgentId> = (0..5).map(|_| AgentId::random()).collect();
    let mut mailboxes: Vec<_> = agents.iter().map(|&a| comm.register(a).unwrap()).collect();
    let sender = comm.sender();
    let hello = Message::builder(agents[0], Recipient::Broadcast)
        .kind(MessageKind::Broadcast)
        .payload("all hands")
        .build();
    assert_eq!(sender.broadcast(hello.clone()).unwrap().reached, 4);
    sender.send(hello).unwrap(); // send() with a Broadcast recipient broadcasts too
    sender.flush();
    for mailbox in &mut mailboxes[1..] {
        for _ in 0..2 {
            let m = mailbox.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(m.payload.as_ref(), b"all hands");
        }
    }
    assert_eq!(
        mailboxes[0].try_recv().unwrap(),
        None,
        "the sender does not get its own"
    );
}

#[test]
fn registering_twice_is_an_error() {
    let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
    let a = AgentId::random();
    let _mailbox = comm.register(a).unwrap();
    assert!(matches!(
        comm.register(a),
        Err(HiveError::AlreadyRegistered(_))
    ));
    comm.unregister(a).unwrap();
    assert!(matches!(
        comm.unregister(a),
        Err(HiveError::UnknownAgent(_))
    ));
}

#[test]
fn a_broadcast_sent_with_a_timeout_into_a_full_mailbox_returns() {
    let comm = Communicator::new(CommunicatorConfig::default().mailbox_capacity(1)).unwrap();
    let (me, busy) = (AgentId::random(), AgentId::random());
    let _mine = comm.register(me).unwrap();
    let _full = comm.register(busy).unwrap(); // never read
    let sender = comm.sender();
    sender.send(Message::new(me, busy, "fills it")).unwrap();
    sender.flush();
    let hello = Message::builder(me, Recipient::Broadcast)
        .kind(MessageKind::Broadcast)
        .payload("all")
        .build();
    // Returns (the full mailbox missed it) instead of waiting for room.
    let report = sender
        .broadcast_timeout(hello.clone(), Duration::from_millis(50))
        .unwrap();
    assert_eq!((report.reached, report.missed), (0, vec![busy]));
    let _ = sender.send_timeout(hello, Duration::from_millis(50));
}
