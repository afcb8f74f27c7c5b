//! # hive-cpubalance
//!
//! A priority-aware CPU load balancer running tasks on real OS threads.
//!
//! Not implemented yet: this crate is an empty placeholder until issue #6
//! lands. It exports nothing, so nothing here can pretend to work.
