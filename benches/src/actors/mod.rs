//! The agent runtime beside the actor frameworks a user would otherwise
//! pick, each used as its docs recommend, on the same five cases: tell
//! 1 -> 1, tell 8 -> 1, ask round trip, spawn 10,000 (+ one message each),
//! and 1,000 agents x 10 messages whose handlers await a 20 ms call.
//!
//! kameo and ractor run on one tokio multi-thread runtime, hive on its own
//! (same size), actix on its single-threaded `System`; every producer or
//! caller is a task of the runtime it measures (actix: of its arbiter).

// The actor and message types mirror each framework's own examples; they
// are harness code, documented by the module docs above.
#![allow(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod actix;
pub mod hive;
pub mod kameo;
pub mod ractor;
