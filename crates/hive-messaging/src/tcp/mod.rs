//! TCP transport between processes (feature `tcp`, tokio).
//!
//! A [`TcpLink`] joins the local [`Communicator`] to one
//! in another process. Each side announces the agents it hosts; the other
//! side routes them to the link, so `sender.send(message)` to a remote agent
//! works exactly like a local send (same batching, same backpressure, same
//! errors). Batches to the peer are coalesced into frames of the wire format,
//! compressed above the threshold, and written with `TCP_NODELAY`.
//!
//! ## What is guaranteed
//!
//! - **Order** per (sender handle, recipient) holds across the link.
//! - **Backpressure**: the link's write queue is a bounded mailbox
//!   (`write_queue` messages) and at most `unacked_frames` frames are in
//!   flight; senders wait (or get `Full`) beyond that, and a slow receiver
//!   slows the link through TCP.
//! - **Acknowledgement**: the receiver acknowledges a frame once every
//!   message in it was accepted by a local mailbox.
//! - **After a disconnect** every message the peer did not acknowledge is
//!   reported: it is handed to `Communicator::take_undelivered` and counted
//!   in `stats().undeliverable` and in the link's [`LinkReport`]. None is
//!   dropped silently. A message reported this way *may* still have been
//!   delivered, if the connection broke after the peer accepted its frame
//!   but before the acknowledgement arrived: delivery is at most once unless
//!   the application resends what was reported. Routes to the peer's agents
//!   are removed at once, so later sends to them fail with `UnknownAgent`.
//! - **Graceful close** ([`TcpLink::close`]) stops new sends to the peer,
//!   flushes what senders hold, writes everything queued and waits (up to
//!   `close_timeout`) for the peer to acknowledge it.
//!
//! Messages are delivered only to agents hosted by the receiving process;
//! a link never forwards to a third process.

mod link;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hive_types::HiveResult;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::wire::{Dictionary, EncoderConfig, Limits};
use crate::Communicator;

pub use link::{LinkReport, TcpLink};

/// How links encode, bound and close.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Compression of outgoing frames (zstd level 3 above 1 KiB by default).
    pub encoder: EncoderConfig,
    /// Limits on incoming frames.
    pub limits: Limits,
    /// Dictionaries incoming frames may use.
    pub dictionaries: Vec<Dictionary>,
    /// Messages the link's write queue holds (its backpressure bound).
    pub write_queue: usize,
    /// Most messages per frame.
    pub frame_messages: usize,
    /// Most raw bytes per frame (a larger message travels alone).
    pub frame_bytes: usize,
    /// Frames written and not yet acknowledged before the writer waits.
    pub unacked_frames: usize,
    /// How long [`TcpLink::close`] waits for the last acknowledgements.
    pub close_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            encoder: EncoderConfig::default(),
            limits: Limits::default(),
            dictionaries: Vec::new(),
            write_queue: 65_536,
            frame_messages: 1024,
            frame_bytes: 1 << 20,
            unacked_frames: 64,
            close_timeout: Duration::from_secs(10),
        }
    }
}

impl TcpLink {
    /// Connects to a peer listening at `addr` and starts the link on the
    /// current tokio runtime.
    pub async fn connect(
        comm: &Communicator,
        addr: impl ToSocketAddrs,
        config: TcpConfig,
    ) -> HiveResult<TcpLink> {
        let stream = TcpStream::connect(addr).await?;
        TcpLink::start(comm, stream, config)
    }
}

/// Accepts links on a listening socket until shut down.
///
/// ```no_run
/// # async fn demo() -> hive_types::HiveResult<()> {
/// use hive_messaging::tcp::{TcpConfig, TcpLink, TcpServer};
/// use hive_messaging::{Communicator, CommunicatorConfig};
///
/// let here = Communicator::new(CommunicatorConfig::default())?;
/// let server = TcpServer::bind(&here, "127.0.0.1:0", TcpConfig::default()).await?;
/// let there = Communicator::new(CommunicatorConfig::default())?;
/// let link = TcpLink::connect(&there, server.local_addr(), TcpConfig::default()).await?;
/// // agents registered on either side can now message each other
/// link.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpServer {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<TcpLink>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpServer {
    /// Listens on `addr` (port 0 picks a free port) for peers of `comm`.
    pub async fn bind(
        comm: &Communicator,
        addr: impl ToSocketAddrs,
        config: TcpConfig,
    ) -> HiveResult<TcpServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let links = Arc::new(Mutex::new(Vec::new()));
        let (comm, kept) = (comm.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Ok(link) = TcpLink::start(&comm, stream, config.clone()) {
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(link);
                }
            }
        });
        Ok(TcpServer {
            addr,
            links,
            accept,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Links accepted so far (those still open and those ended).
    pub fn link_count(&self) -> usize {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Stops accepting and closes every link gracefully.
    pub async fn shutdown(self) -> Vec<LinkReport> {
        self.accept.abort();
        let links = std::mem::take(&mut *self.links.lock().unwrap_or_else(PoisonError::into_inner));
        let mut reports = Vec::new();
        for link in links {
            reports.push(link.close().await);
        }
        reports
    }
}
