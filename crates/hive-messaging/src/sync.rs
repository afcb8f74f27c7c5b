//! The primitives the inbox's lock-free parts use: `std`'s, or loom's when
//! model checking (`RUSTFLAGS="--cfg hive_loom"`), the way sharded-slab
//! switches. Only code with a loom model goes through here.

#[cfg(hive_loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(hive_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(hive_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(hive_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// `hive_types::sync::lock`, for loom's mutex when model checking.
#[cfg(hive_loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
#[cfg(not(hive_loom))]
pub(crate) use hive_types::sync::lock;
