//! What the JetStream outage tests share: a stream of numbered messages
//! through a disruption, and the check that nothing was lost.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hive_messaging::nats::NatsTransport;
use hive_messaging::{Communicator, Mailbox};
use hive_types::AgentId;

use super::{numbered, seq};

/// Sends `n` numbered messages from `a` to `mailbox`'s agent, calling
/// `disrupt` after the `at`th; then every message must have been stored
/// (acknowledged by the stream) and handled at least once.
pub(crate) fn loses_nothing(
    rt: &tokio::runtime::Runtime,
    (a, ta): (&Communicator, &NatsTransport),
    mut mailbox: Mailbox,
    n: u32,
    (at, disrupt): (u32, impl FnOnce()),
) {
    let to = mailbox.agent();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let consumer = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            while let Ok(m) = mailbox.recv_timeout(Duration::from_secs(30)) {
                let mut s = seen.lock().unwrap();
                s.insert(seq(&m));
                if s.len() == n as usize {
                    return;
                }
            }
        })
    };
    let (sender, from) = (a.sender(), AgentId::random());
    let mut disrupt = Some(disrupt);
    for i in 0..n {
        sender.send(numbered(from, to, i, 32)).unwrap();
        if i == at {
            sender.flush();
            if let Some(disrupt) = disrupt.take() {
                disrupt();
            }
        }
    }
    sender.flush();
    rt.block_on(ta.settle(Duration::from_secs(60))).unwrap();
    consumer.join().unwrap();
    let s = ta.stats();
    assert_eq!(
        s.messages_acked,
        u64::from(n),
        "every message stored: {s:?}"
    );
    assert_eq!(s.undelivered(), 0, "{s:?}");
    let seen = seen.lock().unwrap();
    let missing: Vec<u32> = (0..n).filter(|i| !seen.contains(i)).take(10).collect();
    assert!(missing.is_empty(), "never handled: {missing:?}...");
}
