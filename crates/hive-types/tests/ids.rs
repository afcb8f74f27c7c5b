//! Id generation across threads.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;

use hive_types::{AgentId, MessageId};

#[test]
fn a_million_ids_from_four_threads_are_unique() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..250_000)
                    .map(|_| MessageId::random())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen = HashSet::with_capacity(1_000_000);
    for t in threads {
        for id in t.join().unwrap() {
            assert!(seen.insert(id), "duplicate id {id}");
        }
    }
    assert_eq!(seen.len(), 1_000_000);
}

#[test]
fn ids_differ_between_fresh_threads() {
    // Each thread seeds its own generator; two threads must not start alike.
    let a = std::thread::spawn(AgentId::random).join().unwrap();
    let b = std::thread::spawn(AgentId::random).join().unwrap();
    assert_ne!(a, b);
}
