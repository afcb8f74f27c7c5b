//! Helpers the TCP tests share: runtimes, communicators, routes, and a raw
//! socket peer that speaks only as much of the protocol as a test wants.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

#[cfg(feature = "jetstream")]
pub(crate) mod durable;
#[cfg(feature = "nats")]
pub(crate) mod nats;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hive_messaging::wire::{Control, EncoderConfig, FrameEncoder};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message};

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn comm() -> Communicator {
    Communicator::new(CommunicatorConfig::default()).unwrap()
}

/// Waits until `comm` can route to `agent` (the peer announced it).
pub(crate) fn wait_for_route(comm: &Communicator, agent: AgentId) {
    wait_until("the route to appear", || comm.agents().contains(&agent));
}

/// Polls `done` every 2 ms; fails the test after 30 s.
pub(crate) fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_within(what, Duration::from_secs(30), done);
}

/// Polls `done` every 2 ms; fails the test after `within`.
pub(crate) fn wait_within(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The sequence number a test wrote in a payload's first four bytes.
pub(crate) fn seq(m: &Message) -> u32 {
    u32::from_le_bytes(m.payload.as_ref()[..4].try_into().unwrap())
}

/// A message carrying `i` and `pad` bytes after it.
pub(crate) fn numbered(from: AgentId, to: AgentId, i: u32, pad: usize) -> Message {
    let mut payload = i.to_le_bytes().to_vec();
    payload.resize(4 + pad, b'x');
    Message::new(from, to, payload)
}

/// Kills and reaps a child process even when an assertion fails first.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A peer on a plain socket, writing whatever bytes a test chooses.
pub(crate) struct RawPeer {
    pub(crate) socket: TcpStream,
    encoder: FrameEncoder,
}

impl RawPeer {
    /// Connects without saying anything.
    pub(crate) fn connect(addr: SocketAddr) -> RawPeer {
        let socket = TcpStream::connect(addr).unwrap();
        socket.set_nodelay(true).unwrap();
        RawPeer {
            socket,
            encoder: FrameEncoder::new(EncoderConfig::uncompressed()).unwrap(),
        }
    }

    /// Connects and completes a plaintext handshake.
    pub(crate) fn hello(addr: SocketAddr) -> RawPeer {
        let mut peer = RawPeer::connect(addr);
        peer.control(&[Control::Hello { version: 1 }]);
        peer
    }

    pub(crate) fn control(&mut self, records: &[Control]) {
        let mut frame = Vec::new();
        self.encoder.encode_control(records, 0, &mut frame).unwrap();
        self.send(&frame);
    }

    pub(crate) fn messages(&mut self, messages: &[Message], sequence: u64) {
        let mut frame = Vec::new();
        self.encoder
            .encode_messages(messages, sequence, &mut frame)
            .unwrap();
        self.send(&frame);
    }

    /// Writes `bytes`; a connection the other side closed is no error here.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        let _ = self.socket.write_all(bytes);
    }

    /// Reads (and discards) until the other side closes the connection;
    /// fails the test if it stays open for 30 s.
    pub(crate) fn wait_closed(&mut self) {
        self.socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return
                }
                Err(e) => panic!("the connection stayed open: {e}"),
            }
        }
    }
}
