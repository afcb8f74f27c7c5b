//! # hive-core
//!
//! The hive facade: wires communicator, pools, balancer and metrics into a swarm system.
//!
//! Not implemented yet: this crate is an empty placeholder until issue #9
//! lands. It exports nothing, so nothing here can pretend to work.
