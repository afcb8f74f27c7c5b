//! # hive-core
//!
//! An agent runtime for swarms of LLM-calling agents, and the facade that
//! wires hive's components together: [`SwarmSystem`] runs agents on a
//! communicator (batching, priority mailboxes, request/reply), object
//! pools, a priority-aware CPU balancer and a metrics recorder. Each
//! component crate is re-exported as a module (`hive_core::messaging`,
//! `::mempool`, `::cpubalance`, `::metrics`).
//!
//! - **Async agents** ([`Agent`]) run as tasks on a tokio runtime (the
//!   system's own, or yours), so an agent awaiting an LLM or HTTP call holds
//!   no thread; CPU-heavy steps go to the balancer at a priority with
//!   [`Context::spawn_cpu`]. **Sync agents** ([`SyncAgent`], or any
//!   closure) run on the balancer.
//! - Each agent handles one message at a time, most urgent first
//!   (`Critical`, `High`, `Normal`, `Low`, with aging), in order within a
//!   priority; agents run concurrently. Expired messages (TTL) are not
//!   handled but reported.
//! - **Request/reply**: [`Context::ask`], [`SwarmSystem::ask`] (blocking
//!   and async) with a deadline; late replies are counted and dropped.
//! - **Lifecycle**: spawn any time, [`stop`](SwarmSystem::stop) one agent
//!   (draining or cancelling its mail), names ([`SwarmSystem::lookup`]),
//!   restart on panic ([`RestartPolicy`], [`Backoff`]) with an escalation
//!   event, a watchdog for handlers that run too long, lifecycle messages
//!   for subscribers.
//! - **Observable by default** (feature `metrics`): the system installs
//!   its recorder as the global `metrics` recorder, measures a window every
//!   second (throughput, that window's latency, memory, CPU; an hour kept,
//!   `SwarmSystem::history`), raises regression alerts against its own
//!   recent windows (`SwarmSystem::alerts`, `SwarmBuilder::on_alert`) and,
//!   with `http`, serves metrics, history, alerts and a dashboard
//!   (`SwarmBuilder::serve`).
//! - **Traceable** (feature `tracing`): a `hive.handle` span per handled
//!   message and a `hive.ask` span per ask, linked into one tree across the
//!   agents of a process (`SwarmBuilder::trace_links`).
//! - **Bounded and honest**: mailboxes, the directory, metric cardinality
//!   and the store of undelivered messages are bounded; every accepted
//!   message ends handled, replied, forwarded, or counted undelivered with
//!   its reason ([`ShutdownReport`]).
//!
//! ```
//! use std::time::Duration;
//! use hive_core::{Agent, Context, Message, Priority, SwarmSystem};
//!
//! /// Answers each question after "calling a model" (a timer here).
//! struct Analyst;
//!
//! impl Agent for Analyst {
//!     async fn handle(&mut self, question: Message, ctx: &mut Context) {
//!         hive_core::tokio::time::sleep(Duration::from_millis(5)).await; // the LLM call
//!         let text = question.payload.clone();
//!         // CPU-heavy scoring runs on the balancer, not on this task's thread.
//!         let score = ctx
//!             .spawn_cpu(Priority::High, move || text.iter().map(|b| *b as u64).sum::<u64>())
//!             .await
//!             .unwrap_or(0);
//!         let _ = ctx.reply(&question, score.to_string()).await;
//!     }
//! }
//!
//! let system = SwarmSystem::builder().build()?;
//! let analyst = system.agent().name("analyst").spawn(Analyst)?;
//! let answer = system.ask(analyst.id(), "ab", Duration::from_secs(5))?;
//! assert_eq!(answer.payload.as_ref(), b"195"); // 97 + 98
//! let report = system.shutdown(Duration::from_secs(5));
//! assert_eq!(report.accepted, report.handled + report.replies + report.undelivered);
//! # Ok::<(), hive_core::HiveError>(())
//! ```
//!
//! [`SystemReport`] is the seed document's table, measured, plus per-agent
//! figures (depth, lag, handled per second, handler latency, panics,
//! restarts). [`Optimizations`] turns each optimization off, for the
//! ablation table of `cargo xtask bench`.
//!
//! Features: `mempool` and `metrics` (default); `wire`, `tcp`, `nats`,
//! `jetstream` (durable agent mail: acknowledged after `handle` returns,
//! redelivered after a crash or a panic), `http`; `json` (typed payloads
//! over serde: [`json`]); `full` for everything.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod agent;
mod builder;
mod cell;
mod context;
mod directory;
mod inner;
#[cfg(feature = "json")]
pub mod json;
mod lifecycle;
#[cfg(feature = "metrics")]
mod observe;
mod on_balancer;
mod on_tokio;
mod options;
mod procstat;
mod report;
mod runtime;
mod shutdown;
mod spawn;
mod supervision;
mod system;
mod ticker;
#[cfg(feature = "tracing")]
mod trace;
#[cfg(feature = "metrics")]
mod watch;

pub use agent::{Agent, SyncAgent};
pub use builder::SwarmBuilder;
pub use cell::{StopMode, StopReport};
pub use context::{Context, SyncContext};
pub use inner::SwarmSystem;
pub use lifecycle::LifecycleEvent;
pub use options::{AllocationCounter, Optimizations};
pub use report::{AgentReport, Percentiles, SystemReport};
pub use shutdown::ShutdownReport;
pub use spawn::{AgentBuilder, AgentRef};
pub use supervision::{
    AgentEvent, AgentEventKind, Backoff, Overrun, RestartPolicy, StopReason, Watchdog,
};
#[cfg(feature = "tracing")]
pub use trace::TracePropagator;
#[cfg(feature = "metrics")]
pub use watch::Window;

pub use hive_types::{
    AgentId, HiveError, HiveResult, Message, MessageKind, Priority, Recipient, Rejected,
    TraceContext,
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

/// The async runtime agents run on, re-exported so a program that depends
/// on hive-core alone can use its timers and I/O in handlers.
pub use tokio;

/// The `tracing` facade hive's spans go through (feature `tracing`),
/// re-exported so a program can open its own spans around requests.
#[cfg(feature = "tracing")]
pub use tracing;

/// Resident memory (now and peak) and CPU time of this process, as the
/// report reads them.
pub mod process {
    pub use crate::procstat::{cpu_time, peak_resident_bytes, resident_bytes};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
