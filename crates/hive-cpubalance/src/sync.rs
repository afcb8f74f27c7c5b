//! The primitives the balancer's lock-free hand-offs use: `std`'s, or
//! loom's when model checking (`RUSTFLAGS="--cfg hive_loom"`), the way
//! sharded-slab switches. Only code with a loom model goes through here.

#[cfg(hive_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(hive_loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(hive_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(hive_loom))]
pub(crate) use std::thread::yield_now;
