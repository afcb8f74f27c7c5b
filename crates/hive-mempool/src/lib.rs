//! # hive-mempool
//!
//! Fast, bounded, self-sizing object pools with RAII guards.
//!
//! Not implemented yet: this crate is an empty placeholder until issue #3
//! lands. It exports nothing, so nothing here can pretend to work.
