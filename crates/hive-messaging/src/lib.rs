//! # hive-messaging
//!
//! The swarm communicator: per-destination batching, priorities, bounded mailboxes, wire format and transports.
//!
//! Not implemented yet: this crate is an empty placeholder until issue #4
//! lands. It exports nothing, so nothing here can pretend to work.
