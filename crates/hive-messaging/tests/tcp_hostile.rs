//! Hostile peers on raw sockets against a `TcpServer`: each limit holds
//! (bounded, accounted memory; a typed error and a count; the offending
//! connection closed) and an honest link to the same server keeps working.
#![cfg(feature = "tcp")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hive_messaging::tcp::{LinkToken, TcpConfig, TcpLink, TcpServer};
use hive_messaging::wire::Control;
use hive_messaging::{Communicator, CommunicatorConfig, Mailbox, UndeliveredReason};
use hive_types::{AgentId, Message};
use support::{comm, runtime, wait_for_route, wait_until, RawPeer};

/// An honest process linked to the same server, to show that a hostile
/// peer does not stop others.
struct Honest {
    comm: Communicator,
    _link: TcpLink,
    from: AgentId,
    to: AgentId,
    mailbox: Mailbox,
}

impl Honest {
    fn join(rt: &tokio::runtime::Runtime, server: &Communicator, addr: SocketAddr) -> Honest {
        let comm = comm();
        let to = AgentId::random();
        let mailbox = server.register(to).unwrap();
        let link = rt
            .block_on(TcpLink::connect(&comm, addr, TcpConfig::plaintext()))
            .unwrap();
        wait_for_route(&comm, to);
        Honest {
            comm,
            _link: link,
            from: AgentId::random(),
            to,
            mailbox,
        }
    }

    /// One message gets through.
    fn gets_through(&mut self) {
        self.comm
            .sender()
            .send(Message::new(self.from, self.to, "still here"))
            .unwrap();
        let m = self.mailbox.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(m.payload.as_ref(), b"still here");
    }
}

fn serve(
    rt: &tokio::runtime::Runtime,
    comm: &Communicator,
    config: TcpConfig,
) -> (TcpServer, SocketAddr) {
    let server = rt
        .block_on(TcpServer::bind(comm, "127.0.0.1:0", config))
        .unwrap();
    let addr = server.local_addr();
    (server, addr)
}

#[test]
fn dead_letters_from_a_peer_are_bounded_in_bytes_and_copied_out() {
    let rt = runtime();
    let b = Communicator::new(CommunicatorConfig::default().dead_letter_bytes(64 * 1024)).unwrap();
    let (server, addr) = serve(&rt, &b, TcpConfig::plaintext());
    let mut honest = Honest::join(&rt, &b, addr);
    let mut peer = RawPeer::hello(addr);
    let nobody = AgentId::random();
    for sequence in 1..=20 {
        let batch: Vec<Message> = (0..100)
            .map(|_| Message::new(AgentId::random(), nobody, vec![9u8; 1024]))
            .collect();
        peer.messages(&batch, sequence);
    }
    wait_until("2,000 dead letters", || {
        b.stats().undeliverable_for(UndeliveredReason::NoRecipient) == 2_000
    });
    let stats = b.stats();
    assert!(stats.undelivered_evicted > 0, "{stats:?}");
    let kept = b.take_undelivered();
    let kept_bytes: usize = kept.iter().map(|u| u.message.payload.len()).sum();
    assert!(kept_bytes <= 64 * 1024, "{kept_bytes} bytes kept");
    assert!(!kept.is_empty());
    // A frame sent twice (the same message ids) is dropped the second time.
    let again: Vec<Message> = kept.iter().map(|u| u.message.clone()).take(10).collect();
    peer.messages(&again, 21);
    wait_until("the duplicates to be dropped", || {
        server.stats().duplicates_dropped == 10
    });
    honest.gets_through();
    drop(peer);
    rt.block_on(server.shutdown());
}

#[test]
fn routes_a_peer_may_announce_are_limited_and_go_with_the_link() {
    let rt = runtime();
    let b = comm();
    let config = TcpConfig {
        max_routes: 100,
        ..TcpConfig::plaintext()
    };
    let (server, addr) = serve(&rt, &b, config);
    let mut honest = Honest::join(&rt, &b, addr);
    let mut peer = RawPeer::hello(addr);
    let announced: Vec<AgentId> = (0..100).map(|_| AgentId::random()).collect();
    let hosts: Vec<Control> = announced.iter().map(|a| Control::Hosts(*a)).collect();
    peer.control(&hosts);
    wait_until("100 routes", || b.agents().contains(&announced[99]));
    peer.control(&[Control::Hosts(AgentId::random())]);
    peer.wait_closed();
    wait_until("the routes to go", || !b.agents().contains(&announced[0]));
    assert!(server.stats().frames_rejected >= 1);
    honest.gets_through();
    rt.block_on(server.shutdown());
}

#[test]
fn a_frame_of_too_many_records_is_refused_and_a_large_one_does_not_stall_others() {
    let rt = runtime();
    let b = comm();
    let (server, addr) = serve(&rt, &b, TcpConfig::plaintext());
    let mut honest = Honest::join(&rt, &b, addr);
    let target = AgentId::random();
    let mut mailbox = b.register(target).unwrap();
    let mut peer = RawPeer::hello(addr);
    // Just under the record limit: many tiny messages, delivered in turns.
    let empty: Vec<Message> = (0..60_000)
        .map(|_| Message::new(AgentId::random(), target, Vec::new()))
        .collect();
    peer.messages(&empty, 1);
    honest.gets_through();
    let mut got = 0;
    let mut buf = Vec::new();
    while got < 60_000 {
        got += mailbox.recv_many(&mut buf, 4096).unwrap();
        buf.clear();
    }
    // One record over the limit: refused, and the link closes.
    let limit = TcpConfig::plaintext().limits.max_records as usize;
    let over: Vec<Message> = (0..=limit)
        .map(|_| Message::new(AgentId::random(), target, Vec::new()))
        .collect();
    peer.messages(&over, 2);
    peer.wait_closed();
    assert!(server.stats().frames_rejected >= 1);
    assert_eq!(mailbox.try_recv().unwrap(), None, "nothing of it delivered");
    honest.gets_through();
    rt.block_on(server.shutdown());
}

fn short_timeouts() -> TcpConfig {
    TcpConfig {
        handshake_timeout: Duration::from_millis(300),
        frame_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(900),
        ..TcpConfig::plaintext()
    }
}

#[test]
fn a_silent_connection_fails_the_handshake_timeout() {
    let rt = runtime();
    let b = comm();
    let (server, addr) = serve(&rt, &b, short_timeouts());
    let mut honest = Honest::join(&rt, &b, addr);
    let mut peer = RawPeer::connect(addr);
    peer.wait_closed();
    honest.gets_through();
    rt.block_on(server.shutdown());
}

#[test]
fn half_a_frame_fails_the_frame_timeout() {
    let rt = runtime();
    let b = comm();
    let (server, addr) = serve(&rt, &b, short_timeouts());
    let mut honest = Honest::join(&rt, &b, addr);
    let mut peer = RawPeer::hello(addr);
    peer.send(&[0x48, 0x56, 0x01]); // the first bytes of a header, then nothing
    peer.wait_closed();
    assert!(server.stats().frames_rejected >= 1);
    honest.gets_through();
    rt.block_on(server.shutdown());
}

#[test]
fn a_peer_that_stops_talking_fails_the_idle_timeout() {
    let rt = runtime();
    let b = comm();
    let (server, addr) = serve(&rt, &b, short_timeouts());
    let mut peer = RawPeer::hello(addr);
    peer.wait_closed(); // it never answers keep-alives
    wait_until("the idle link to be pruned", || server.ended_links() >= 1);
    rt.block_on(server.shutdown());
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let rt = runtime();
    let b = comm();
    let config = TcpConfig {
        max_connections: 2,
        ..TcpConfig::plaintext()
    };
    let (server, addr) = serve(&rt, &b, config);
    let first = RawPeer::hello(addr);
    let _second = RawPeer::hello(addr);
    wait_until("two links", || server.link_count() == 2);
    let mut third = RawPeer::hello(addr);
    third.wait_closed();
    assert!(server.refused() >= 1);
    drop(first);
    wait_until("room again", || server.link_count() == 1);
    let _fourth = RawPeer::hello(addr);
    wait_until("the new link", || server.link_count() == 2);
    rt.block_on(server.shutdown());
}

#[test]
fn frames_still_arriving_share_a_bounded_budget() {
    let rt = runtime();
    let b = comm();
    let config = TcpConfig {
        max_partial_bytes: 1 << 20,
        ..TcpConfig::plaintext()
    };
    let (server, addr) = serve(&rt, &b, config);
    let mut honest = Honest::join(&rt, &b, addr);
    // Frames of 600 KB: the first peer's fits the budget, the second's not.
    let big = [Message::new(
        AgentId::random(),
        AgentId::random(),
        vec![1u8; 600 * 1024],
    )];
    let mut frame = Vec::new();
    hive_messaging::wire::FrameEncoder::new(hive_messaging::wire::EncoderConfig::uncompressed())
        .unwrap()
        .encode_messages(&big, 1, &mut frame)
        .unwrap();
    let half = &frame[..frame.len() / 2];
    let mut first = RawPeer::hello(addr);
    first.send(half);
    wait_until("the first link", || server.link_count() >= 2);
    std::thread::sleep(Duration::from_millis(100));
    let mut second = RawPeer::hello(addr);
    second.send(half);
    second.wait_closed();
    assert!(server.stats().frames_rejected >= 1);
    honest.gets_through();
    // The first still may finish its frame (for an agent nobody hosts).
    first.send(&frame[frame.len() / 2..]);
    wait_until("the frame to arrive", || {
        b.stats().undeliverable_for(UndeliveredReason::NoRecipient) == 1
    });
    rt.block_on(server.shutdown());
}

#[test]
fn ended_links_are_pruned() {
    let rt = runtime();
    let b = comm();
    let (server, addr) = serve(&rt, &b, TcpConfig::plaintext());
    for _ in 0..20 {
        let peer = RawPeer::hello(addr);
        drop(peer);
    }
    wait_until("20 ended links", || server.ended_links() == 20);
    assert_eq!(server.link_count(), 0);
    rt.block_on(server.shutdown());
}

#[test]
fn data_before_the_token_handshake_is_refused() {
    let rt = runtime();
    let b = comm();
    let token = LinkToken::new("a token of at least sixteen bytes").unwrap();
    let (server, addr) = serve(&rt, &b, TcpConfig::token(token));
    let target = AgentId::random();
    let mut mailbox = b.register(target).unwrap();
    let mut peer = RawPeer::hello(addr); // says hello, proves nothing
    peer.messages(&[Message::new(AgentId::random(), target, "let me in")], 1);
    peer.wait_closed();
    assert_eq!(mailbox.try_recv().unwrap(), None);
    assert!(server.stats().frames_rejected >= 1 || server.refused() >= 1);
    rt.block_on(server.shutdown());
}
