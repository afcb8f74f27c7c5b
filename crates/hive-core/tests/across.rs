//! Two systems joined by a TCP link (two processes' worth): asks from
//! outside any agent reach an agent of the other system and get their
//! replies back, through the communicator's reply address.
#![cfg(feature = "tcp")]
// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use hive_core::messaging::UndeliveredReason;
use hive_core::SwarmSystem;

#[path = "support/tcp.rs"]
mod tcp;
use tcp::{linked, Echo};

#[test]
fn an_ask_from_outside_crosses_a_link_and_its_reply_comes_back() {
    let here = SwarmSystem::builder().build().unwrap();
    let there = SwarmSystem::builder().build().unwrap();
    let echo = there.spawn(Echo).unwrap().id();
    let rt = here.runtime().clone();
    let (server, link) = linked(&here, &there);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply_address = here.communicator().reply_address();
    // The link announces both ways: the echo agent here, the reply address there.
    while !(here.communicator().is_registered(echo)
        && there.communicator().is_registered(reply_address))
    {
        assert!(Instant::now() < deadline, "the link never announced");
        std::thread::sleep(Duration::from_millis(5));
    }

    let reply = here.ask(echo, "blocking", Duration::from_secs(5)).unwrap();
    assert_eq!(&reply.payload[..], b"blocking");
    assert_eq!(reply.sender, echo);
    let reply = rt
        .block_on(here.ask_async(echo, "async", Duration::from_secs(5)))
        .unwrap();
    assert_eq!(&reply.payload[..], b"async");

    // Anything but a reply has no mailbox to go to: counted, not lost.
    let before = here
        .communicator()
        .stats()
        .undeliverable_for(UndeliveredReason::NoRecipient);
    there.tell(reply_address, "not a reply").unwrap();
    while here
        .communicator()
        .stats()
        .undeliverable_for(UndeliveredReason::NoRecipient)
        == before
    {
        assert!(
            Instant::now() < deadline,
            "the stray message was not counted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    rt.block_on(link.close());
    rt.block_on(server.shutdown());
    here.shutdown(Duration::from_secs(5));
    there.shutdown(Duration::from_secs(5));
}
