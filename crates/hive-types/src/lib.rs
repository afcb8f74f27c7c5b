//! # hive-types
//!
//! The shared vocabulary of the hive crates: identifiers, priorities, the
//! [`Message`] envelope, the one error type [`HiveError`], and the seams
//! through which components use each other's services without depending on
//! each other ([`Recycle`] for buffers). It also carries the lock-free
//! [`histogram::AtomicHistogram`] every component uses for its statistics.
//!
//! ```
//! use hive_types::{AgentId, HiveError, Message, Priority, Recipient};
//!
//! let coordinator = AgentId::random();
//! let worker = AgentId::random();
//! let task = Message::builder(coordinator, worker)
//!     .priority(Priority::High)
//!     .payload(&b"{\"task\":\"index\",\"shard\":3}"[..])
//!     .build();
//! assert_eq!(task.recipient, Recipient::Agent(worker));
//! assert!(task.priority > Priority::Normal);
//!
//! let err = HiveError::UnknownAgent(worker);
//! assert!(err.to_string().contains("register it first"));
//! ```
//!
//! Ids are random version-4 UUIDs drawn from a per-thread generator seeded
//! once from the OS, so minting one costs nanoseconds, not a syscall.
//!
//! With the `serde` feature the data types serialize with serde.
//!
//! You rarely need this crate alone: each component crate re-exports what its
//! API uses, and `hive-core` re-exports everything.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod error;
pub mod histogram;
mod id;
mod kind;
mod message;
mod priority;
mod receipt;
mod recycle;
pub mod sync;

pub use error::{FrameError, HiveError, HiveResult, Rejected};
pub use id::{AgentId, MessageId, ParseIdError, TaskId};
pub use kind::{MessageKind, Recipient};
pub use message::{Message, MessageBuilder, Timestamp, TraceContext, ENVELOPE_BYTES, TRACE_BYTES};
pub use priority::{ParsePriorityError, PerPriority, Priority};
pub use receipt::{Outcome, Receipt, ReceiptGuard};
pub use recycle::{BoundedRecycler, NoRecycling, Recyclable, Recycle, SharedRecycler};
