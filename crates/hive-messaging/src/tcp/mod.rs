//! TCP transport between processes (feature `tcp`, tokio).
//!
//! A [`TcpLink`] joins the local [`Communicator`] to one in another
//! process. Each side announces the agents it hosts; the other side routes
//! them to the link, so `sender.send(message)` to a remote agent works
//! exactly like a local send (same batching, same backpressure, same
//! errors). Batches to the peer are coalesced into frames of the wire
//! format, compressed above the threshold, and written with `TCP_NODELAY`.
//!
//! ## Security
//!
//! A link runs over TLS ([`TcpConfig::tls`], rustls; mutual TLS when the
//! server verifies client certificates), proves a pre-shared token
//! ([`TcpConfig::token`], an HMAC challenge in the handshake, nothing secret
//! on the wire), both, or, only when asked for with
//! [`TcpConfig::plaintext`], neither. A peer that fails the handshake, or
//! does not finish it within `handshake_timeout`, is disconnected.
//!
//! ## What is guaranteed
//!
//! - **Order** per (sender handle, recipient, priority) holds across the link.
//! - **Backpressure**: the link's write queue is bounded (`write_queue`
//!   messages, `write_queue_bytes` bytes) and at most `unacked_frames`
//!   frames (`unacked_bytes` bytes) are in flight; senders wait (or get
//!   `Full`) beyond that, and a slow receiver slows the link through TCP.
//!   Acknowledgements never wait behind data, so traffic both ways cannot
//!   deadlock the link.
//! - **Delivery status** (see [`transport`](crate::transport)): a message
//!   is delivered once the peer acknowledged its frame (every message in it
//!   was taken by a local mailbox there); when the link ends, what was
//!   written and not acknowledged is reported `Unknown`, what never left is
//!   reported `NotSent`. Receivers drop duplicates by message id, so
//!   resending the unknown ones is safe.
//! - **A hostile peer** meets limits: frame size, decoded size, records
//!   per frame and expansion (the decoder's [`Limits`]), routes it may
//!   announce (`max_routes`), handshake, idle and partial-frame timeouts,
//!   connections per server (`max_connections`) and memory for frames still
//!   arriving across them (`max_partial_bytes`). Each hit is a typed error
//!   and a metric, and closes that link only. A link hands received mail to
//!   local agents `messages_per_turn` at a time, so one peer cannot stall
//!   the others.
//! - **Graceful close** ([`TcpLink::close`]) stops new sends to the peer,
//!   flushes what senders hold, writes everything queued and waits (up to
//!   `close_timeout`) for the peer to acknowledge it.
//!
//! Messages are delivered only to agents hosted by the receiving process;
//! a link never forwards to a third process.

mod link;
mod reader;
mod security;
mod state;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hive_types::sync::lock;
use std::time::Duration;

use hive_types::{HiveError, HiveResult};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::transport::TransportStats;
use crate::wire::{Dictionary, EncoderConfig, Limits};
use crate::Communicator;

pub use link::{LinkReport, TcpLink};
pub use rustls;
pub use security::{LinkToken, Security, TlsConfig};

use security::Role;

/// How links are secured, encode, bound and close. Start from
/// [`tls`](Self::tls), [`token`](Self::token) or
/// [`plaintext`](Self::plaintext), then adjust the public fields.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Who may use a link (no default: choose one).
    pub security: Security,
    /// Compression of outgoing frames (zstd level 3 above 1 KiB by default).
    pub encoder: EncoderConfig,
    /// Limits on incoming frames.
    pub limits: Limits,
    /// Dictionaries incoming frames may use.
    pub dictionaries: Vec<Dictionary>,
    /// Messages the link's write queue holds (65,536).
    pub write_queue: usize,
    /// Bytes the link's write queue holds (64 MiB).
    pub write_queue_bytes: usize,
    /// Most messages per frame (1,024).
    pub frame_messages: usize,
    /// Most raw bytes per frame (1 MiB; a larger message travels alone).
    pub frame_bytes: usize,
    /// Frames written and not yet acknowledged before the writer waits (64).
    pub unacked_frames: usize,
    /// Raw bytes of the messages in those frames (kept until acknowledged)
    /// before the writer waits (16 MiB).
    pub unacked_bytes: usize,
    /// How long [`TcpLink::close`] waits for the last acknowledgements (10 s).
    pub close_timeout: Duration,
    /// How long TLS and the link handshake may take (10 s).
    pub handshake_timeout: Duration,
    /// How long a link may hear nothing from its peer before it closes
    /// (60 s); each side sends a keep-alive after a third of it in silence.
    pub idle_timeout: Duration,
    /// How long a frame may take to arrive once its first byte did (30 s).
    pub frame_timeout: Duration,
    /// Agents one peer may announce (65,536); more closes the link.
    pub max_routes: usize,
    /// Received messages handed to local mailboxes before the link lets
    /// other tasks run (256).
    pub messages_per_turn: usize,
    /// Links a [`TcpServer`] holds at once (1,024); more are refused.
    pub max_connections: usize,
    /// Memory a [`TcpServer`]'s links may hold, together, for frames still
    /// arriving beyond 64 KiB each (256 MiB); a link that would pass it closes.
    pub max_partial_bytes: usize,
}

impl TcpConfig {
    /// Links secured by `security`, every other field at its default.
    pub fn with_security(security: Security) -> Self {
        TcpConfig {
            security,
            encoder: EncoderConfig::default(),
            limits: Limits::default(),
            dictionaries: Vec::new(),
            write_queue: 65_536,
            write_queue_bytes: 64 << 20,
            frame_messages: 1024,
            frame_bytes: 1 << 20,
            unacked_frames: 64,
            unacked_bytes: 16 << 20,
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(30),
            max_routes: 65_536,
            messages_per_turn: 256,
            max_connections: 1024,
            max_partial_bytes: 256 << 20,
        }
    }

    /// Links over TLS ([`Security::tls`]).
    pub fn tls(tls: TlsConfig) -> Self {
        TcpConfig::with_security(Security::tls(tls))
    }

    /// Links over plain TCP whose ends prove they share `token`
    /// ([`Security::token`]).
    pub fn token(token: LinkToken) -> Self {
        TcpConfig::with_security(Security::token(token))
    }

    /// Links over plain TCP, unauthenticated ([`Security::plaintext`]): for
    /// a trusted network or tests only.
    pub fn plaintext() -> Self {
        TcpConfig::with_security(Security::plaintext())
    }

    /// Also requires the shared `token` (on top of TLS, say).
    pub fn with_token(mut self, token: LinkToken) -> Self {
        self.security.token = Some(token);
        self
    }

    /// Checks the values; the error names the field.
    pub fn validate(&self) -> HiveResult<()> {
        self.security.validate()?;
        let positive = [
            ("write_queue", self.write_queue),
            ("write_queue_bytes", self.write_queue_bytes),
            ("frame_messages", self.frame_messages),
            ("frame_bytes", self.frame_bytes),
            ("unacked_frames", self.unacked_frames),
            ("unacked_bytes", self.unacked_bytes),
            ("messages_per_turn", self.messages_per_turn),
            ("max_connections", self.max_connections),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(HiveError::config(field, "must be at least 1"));
            }
        }
        for (field, value) in [
            ("handshake_timeout", self.handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("frame_timeout", self.frame_timeout),
        ] {
            if value.is_zero() {
                return Err(HiveError::config(field, "must be more than zero"));
            }
        }
        Ok(())
    }
}

/// Memory for frames still arriving, shared by a server's links.
#[derive(Debug)]
pub(crate) struct PartialBudget {
    used: AtomicUsize,
    max: usize,
}

impl PartialBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(PartialBudget {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Takes `n` bytes if they fit.
    pub(crate) fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok()
    }

    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl TcpLink {
    /// Connects to a peer listening at `addr` and starts the link on the
    /// current tokio runtime. Returns once TLS and the link handshake are
    /// done (within `handshake_timeout`); a peer that refuses the link (a
    /// wrong token, a client certificate it does not accept) is an error.
    pub async fn connect(
        comm: &Communicator,
        addr: impl ToSocketAddrs,
        config: TcpConfig,
    ) -> HiveResult<TcpLink> {
        config.validate()?;
        let within = config.handshake_timeout;
        let tcp = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| security::timeout("connect", within))??;
        tcp.set_nodelay(true)?;
        let peer = tcp.peer_addr()?;
        let stream = config.security.connect(tcp, within).await?;
        let budget = PartialBudget::new(config.max_partial_bytes);
        let link = TcpLink::start(comm, stream, peer, config, Role::Connected, budget)?;
        link.wait_ready(within).await?;
        Ok(link)
    }
}

/// A server's open links, and what the ended ones did.
#[derive(Debug, Default)]
struct LinkTable {
    open: HashMap<u64, Arc<TcpLink>>,
    ended: TransportStats,
    ended_links: u64,
    /// The server shut down: links finishing their handshake now close.
    shut: bool,
}

type Links = Arc<Mutex<LinkTable>>;

/// Accepts links on a listening socket until shut down. Links that end are
/// forgotten; at most `max_connections` are open at once.
///
/// ```no_run
/// # async fn demo() -> hive_types::HiveResult<()> {
/// use hive_messaging::tcp::{LinkToken, TcpConfig, TcpLink, TcpServer};
/// use hive_messaging::{Communicator, CommunicatorConfig};
///
/// let token = LinkToken::new(std::env::var("HIVE_LINK_TOKEN").unwrap_or_default())?;
/// let here = Communicator::new(CommunicatorConfig::default())?;
/// let server = TcpServer::bind(&here, "127.0.0.1:0", TcpConfig::token(token.clone())).await?;
/// let there = Communicator::new(CommunicatorConfig::default())?;
/// let link = TcpLink::connect(&there, server.local_addr(), TcpConfig::token(token)).await?;
/// // agents registered on either side can now message each other
/// link.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpServer {
    addr: SocketAddr,
    links: Links,
    accept: tokio::task::JoinHandle<()>,
    refused: Arc<AtomicU64>,
}

impl TcpServer {
    /// Listens on `addr` (port 0 picks a free port) for peers of `comm`.
    pub async fn bind(
        comm: &Communicator,
        addr: impl ToSocketAddrs,
        config: TcpConfig,
    ) -> HiveResult<TcpServer> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let links: Links = Arc::default();
        let refused = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            comm.clone(),
            config,
            links.clone(),
            refused.clone(),
        ));
        Ok(TcpServer {
            addr,
            links,
            accept,
            refused,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Links open now.
    pub fn link_count(&self) -> usize {
        lock(&self.links).open.len()
    }

    /// Links that ended (closed, failed, or were closed for breaking a
    /// limit); their state is gone, their counts are in [`stats`](Self::stats).
    pub fn ended_links(&self) -> u64 {
        lock(&self.links).ended_links
    }

    /// Counters over every link this server accepted, open or ended.
    pub fn stats(&self) -> TransportStats {
        let table = lock(&self.links);
        let mut total = table.ended;
        for link in table.open.values() {
            total += link.stats();
        }
        total
    }

    /// Connections refused because `max_connections` links were open, or
    /// whose TLS or link handshake failed.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes every link gracefully.
    pub async fn shutdown(self) -> Vec<LinkReport> {
        self.accept.abort();
        let links: Vec<Arc<TcpLink>> = {
            let mut table = lock(&self.links);
            table.shut = true;
            table.open.drain().map(|(_, l)| l).collect()
        };
        let mut reports = Vec::new();
        for link in links {
            reports.push(link.close_shared().await);
        }
        reports
    }
}

async fn accept_loop(
    listener: TcpListener,
    comm: Communicator,
    config: TcpConfig,
    links: Links,
    refused: Arc<AtomicU64>,
) {
    let budget = PartialBudget::new(config.max_partial_bytes);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let mut next_id = 0u64;
    while let Ok((tcp, peer)) = listener.accept().await {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("hive_transport_rejected_total", "transport" => "tcp", "reason" => "connections")
                .increment(1);
            continue; // dropping the stream closes it
        };
        next_id += 1;
        let id = next_id;
        let (comm, config, links, budget, refused) = (
            comm.clone(),
            config.clone(),
            links.clone(),
            budget.clone(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let started = async {
                tcp.set_nodelay(true)?;
                let stream = config
                    .security
                    .accept(tcp, config.handshake_timeout)
                    .await?;
                TcpLink::start(&comm, stream, peer, config, Role::Accepted, budget)
            };
            match started.await {
                Ok(link) => {
                    let link = Arc::new(link);
                    let shut = {
                        let mut table = lock(&links);
                        table.open.insert(id, link.clone());
                        table.shut
                    };
                    if shut {
                        link.close_shared().await;
                    }
                    let report = link.wait_finished().await;
                    if !link.is_ready() {
                        // Counted before the link leaves the table, so a
                        // caller that saw it leave sees the count.
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut table = lock(&links);
                    table.open.remove(&id);
                    table.ended += report.stats;
                    table.ended_links += 1;
                }
                Err(_) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}
