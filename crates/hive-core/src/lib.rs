//! # hive-core
//!
//! The hive facade: [`SwarmSystem`] (the document's `OptimizedSwarmSystem`)
//! wires a communicator, object pools, a CPU balancer and a metrics recorder
//! together and runs agents on them. Each component crate is re-exported as
//! a module (`hive_core::messaging`, `::mempool`, `::cpubalance`,
//! `::metrics`), so one dependency gives the whole system.
//!
//! An agent is a handler. It handles one message at a time, in order; agents
//! run in parallel on the balancer, each run at the priority of its mail.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hive_core::{Message, SwarmSystem};
//!
//! let system = SwarmSystem::builder().build()?;
//! let total = Arc::new(AtomicU64::new(0));
//! let seen = total.clone();
//! let adder = system.spawn_agent(move |m: Message, _ctx: &mut hive_core::AgentContext<'_>| {
//!     seen.fetch_add(u64::from(m.payload[0]), Ordering::Relaxed);
//! })?;
//! let doubler = system.spawn_agent(move |m: Message, ctx: &mut hive_core::AgentContext<'_>| {
//!     ctx.send(Message::new(ctx.id(), adder, vec![m.payload[0] * 2])).unwrap();
//! })?;
//! let outside = system.sender();
//! for i in 1..=10u8 {
//!     outside.send(Message::new(hive_core::AgentId::nil(), doubler, vec![i]))?;
//! }
//! outside.flush();
//! assert!(system.quiesce(Duration::from_secs(10)));
//! assert_eq!(total.load(Ordering::Relaxed), 110);
//! let report = system.report();
//! assert_eq!(report.messages_handled, 20);
//! let shutdown = system.shutdown(Duration::from_secs(5));
//! assert_eq!(shutdown.undelivered, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SystemReport`] is the document's table, measured: throughput, latency
//! percentiles, resident memory and its growth, CPU seconds per million
//! messages, per-worker load, bandwidth saved, allocations per message,
//! pool hit rates, delivery success. [`Optimizations`] turns each of the
//! document's optimizations off, for the ablation table of `cargo xtask bench`.
//!
//! Features: `mempool` and `metrics` (default); `wire`, `tcp`, `nats`,
//! `http`; `full` for everything.

mod agent;
mod monitor;
mod procstat;
mod report;
mod system;
pub mod workload;

pub use agent::{Agent, AgentContext};
pub use report::{Percentiles, SystemReport};
pub use system::{AllocationCounter, Optimizations, ShutdownReport, SwarmBuilder, SwarmSystem};

pub use hive_types::{
    AgentId, HiveError, HiveResult, Message, MessageKind, Priority, Recipient, Rejected,
};

#[doc(inline)]
pub use hive_cpubalance as cpubalance;
#[doc(inline)]
#[cfg(feature = "mempool")]
pub use hive_mempool as mempool;
#[doc(inline)]
pub use hive_messaging as messaging;
#[doc(inline)]
#[cfg(feature = "metrics")]
pub use hive_metrics as metrics;
#[doc(inline)]
pub use hive_types as types;

/// Resident memory and CPU time of this process, as the report reads them.
pub mod process {
    pub use crate::procstat::{cpu_time, resident_bytes};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
