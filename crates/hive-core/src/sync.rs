//! The primitives the agents' lock-free hand-offs use: `std`'s, or loom's
//! when model checking (`RUSTFLAGS="--cfg hive_loom"`), the way
//! sharded-slab switches. Only code with a loom model goes through here.

#[cfg(hive_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, Ordering};
#[cfg(not(hive_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, Ordering};
