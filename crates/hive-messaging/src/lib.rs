//! # hive-messaging
//!
//! The swarm communicator: agents register and get a [`Mailbox`]; anyone
//! with a [`Sender`] sends them [`Message`]s. Messages to one destination are
//! batched, and a batch moves to the mailbox as one value (never serialised
//! in-process), so the cost of crossing threads is paid once per batch.
//!
//! A batch is flushed when any of these holds:
//! - it reaches `max_messages` (50) or `max_bytes` (64 KiB);
//! - its oldest message has waited `linger` (10 ms): the timer starts with the
//!   batch's first message and is never pushed back, so a steady trickle
//!   cannot postpone delivery;
//! - the destination is idle (its consumer waits with nothing queued): a
//!   lone message goes out at once, so batching costs latency only under load;
//! - a `Critical` message joins it (never held back; what was before it in
//!   the batch goes with it, so order is kept);
//! - [`Sender::flush`], or the sender is dropped, or the communicator closes.
//!
//! Mailboxes are bounded (`mailbox_capacity`, counting messages still in
//! senders' batches): [`Sender::send`] waits for room, [`Sender::try_send`]
//! hands the message back with `Full`. Order is kept per (sender handle,
//! recipient). Nothing accepted is lost silently: closing delivers every
//! batch, and a message whose recipient went away is kept for
//! [`Communicator::take_undelivered`] and counted.
//!
//! ## Blocking
//! ```
//! use hive_messaging::{Communicator, CommunicatorConfig};
//! use hive_types::{AgentId, Message};
//!
//! let comm = Communicator::new(CommunicatorConfig::default())?;
//! let (planner, worker) = (AgentId::random(), AgentId::random());
//! let mut inbox = comm.register(worker)?;
//!
//! let sender = comm.sender();
//! std::thread::spawn(move || {
//!     for i in 0..100u32 {
//!         sender.send(Message::new(planner, worker, i.to_le_bytes().to_vec())).unwrap();
//!     }
//! }); // the sender is dropped at the end: what it holds is flushed
//!
//! for i in 0..100u32 {
//!     let m = inbox.recv()?;
//!     assert_eq!(m.payload.as_ref(), &i.to_le_bytes()[..]); // in order
//! }
//! # Ok::<(), hive_types::HiveError>(())
//! ```
//!
//! ## Async
//! The same handles work from async code (any executor; no runtime is
//! needed for the blocking API):
//! ```
//! # use hive_messaging::{Communicator, CommunicatorConfig};
//! # use hive_types::{AgentId, Message};
//! # async fn demo() -> hive_types::HiveResult<()> {
//! let comm = Communicator::new(CommunicatorConfig::default())?;
//! let (a, b) = (AgentId::random(), AgentId::random());
//! let mut mailbox = comm.register(b)?;
//! comm.sender().send_async(Message::new(a, b, "hello")).await?;
//! let hello = mailbox.recv_async().await?;
//! assert_eq!(hello.payload.as_ref(), b"hello");
//! # Ok(()) }
//! ```
//!
//! Feature `metrics` (default) reports sends, deliveries, batches by flush
//! reason, batch sizes, batch latency and queued messages through the
//! `metrics` facade; [`Communicator::stats`] gives the same as a snapshot.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod ask;
mod batch;
mod broadcast;
mod communicator;
mod config;
mod dedup;
mod flusher;
mod idmap;
mod inbox;
mod lanes;
mod mailbox;
mod many;
mod registry;
mod requests;
mod sender;
mod shared;
mod signal;
mod stats;
mod sync;
mod turns;
mod undelivered;
mod wait;

#[cfg(any(feature = "tcp", feature = "nats"))]
pub mod transport;

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "wire")]
pub mod wire;

/// The tokio the transports run on, re-exported so a program that only
/// links processes needs no tokio dependency of its own.
#[cfg(any(feature = "tcp", feature = "nats"))]
pub use tokio;

pub use batch::FlushReason;
pub use broadcast::BroadcastReport;
pub use communicator::Communicator;
pub use config::CommunicatorConfig;
pub use hive_types::{
    AgentId, HiveError, HiveResult, Message, MessageId, MessageKind, Outcome, Priority, Receipt,
    ReceiptGuard, Recipient, Rejected,
};
pub use mailbox::{Mailbox, MailboxProbe};
pub use sender::Sender;
pub use stats::{CommunicatorStats, MailboxDepth};
pub use turns::Turns;
pub use undelivered::{Undelivered, UndeliveredReason};

/// The README's examples, compiled (and the first run) as doc tests.
#[cfg(all(doctest, feature = "tcp"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
