//! The lock every hive crate takes its mutexes with.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the guard over from a holder that panicked instead of
/// spreading its panic to every later caller: hive's critical sections
/// leave their data valid at every step, so poisoning tells nothing here.
///
/// ```
/// use std::sync::Mutex;
/// let m = Mutex::new(1);
/// let _ = std::panic::catch_unwind(|| {
///     let _held = m.lock();
///     panic!("a holder panics");
/// });
/// assert_eq!(*hive_types::sync::lock(&m), 1);
/// ```
#[inline]
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
