//! The primitives the pool's lock-free parts use: `std`'s, or loom's when
//! model checking (`RUSTFLAGS="--cfg hive_loom"`), the way sharded-slab
//! switches. Only code with a loom model goes through here.

#[cfg(hive_loom)]
pub(crate) use loom::sync::atomic::{AtomicIsize, Ordering};
#[cfg(not(hive_loom))]
pub(crate) use std::sync::atomic::{AtomicIsize, Ordering};
