//! The recycling seam: how one component reuses buffers another one owns.
//!
//! Messaging needs batch and byte buffers; the mempool crate keeps pools of
//! them. Neither depends on the other: messaging asks a [`Recycle`] for
//! buffers, `hive-core` plugs a pool in, and [`BoundedRecycler`] is the plain
//! default when nobody does.

use crate::sync::lock;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::sync::{Arc, Mutex};

/// A value that can be cleared and reused.
///
/// `reset` must leave nothing one user wrote visible to the next.
pub trait Recyclable {
    /// Clears the contents, keeping the allocation.
    fn reset(&mut self);

    /// Heap bytes the value keeps allocated (its capacity, not its length).
    fn retained_bytes(&self) -> usize;

    /// Gives back capacity so `retained_bytes() <= max_bytes` where the type
    /// can; returns whether it now fits.
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool;
}

impl Recyclable for String {
    fn reset(&mut self) {
        self.clear();
    }
    fn retained_bytes(&self) -> usize {
        self.capacity()
    }
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool {
        self.shrink_to(max_bytes);
        self.capacity() <= max_bytes
    }
}

impl<T> Recyclable for Vec<T> {
    fn reset(&mut self) {
        self.clear();
    }
    fn retained_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>())
    }
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool {
        self.shrink_to(max_bytes / size_of::<T>().max(1));
        self.retained_bytes() <= max_bytes
    }
}

impl<T> Recyclable for VecDeque<T> {
    fn reset(&mut self) {
        self.clear();
    }
    fn retained_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>())
    }
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool {
        self.shrink_to(max_bytes / size_of::<T>().max(1));
        self.retained_bytes() <= max_bytes
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> Recyclable for HashMap<K, V, S> {
    fn reset(&mut self) {
        self.clear();
    }
    fn retained_bytes(&self) -> usize {
        // Entries plus one control byte each; a close estimate of hashbrown.
        self.capacity().saturating_mul(size_of::<(K, V)>() + 1)
    }
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool {
        self.shrink_to(max_bytes / (size_of::<(K, V)>() + 1));
        self.retained_bytes() <= max_bytes
    }
}

impl<T: Eq + Hash, S: BuildHasher> Recyclable for HashSet<T, S> {
    fn reset(&mut self) {
        self.clear();
    }
    fn retained_bytes(&self) -> usize {
        self.capacity().saturating_mul(size_of::<T>() + 1)
    }
    fn shrink_to_bytes(&mut self, max_bytes: usize) -> bool {
        self.shrink_to(max_bytes / (size_of::<T>() + 1));
        self.retained_bytes() <= max_bytes
    }
}

/// A source of reusable values of type `T`: the seam between components.
///
/// `take` hands out an empty value (fresh or reused); `give` returns one,
/// which the implementation resets, keeps or drops.
pub trait Recycle<T>: Send + Sync + fmt::Debug {
    /// An empty value, reused when one is available.
    fn take(&self) -> T;

    /// Returns a value for reuse. It may hold data: the recycler clears it.
    fn give(&self, value: T);
}

/// A shared recycler of `T`, as components store it.
pub type SharedRecycler<T> = Arc<dyn Recycle<T>>;

/// A plain recycler: a mutex-protected stack of at most `max_idle` values,
/// each kept only if it retains at most `max_retained_bytes`.
///
/// ```
/// use hive_types::{BoundedRecycler, Recycle};
///
/// let buffers = BoundedRecycler::<Vec<u8>>::new(4, 1 << 20);
/// let mut buf = buffers.take();
/// buf.extend_from_slice(b"secret");
/// buffers.give(buf);
/// let again = buffers.take();
/// assert!(again.is_empty() && again.capacity() >= 6);
/// ```
pub struct BoundedRecycler<T> {
    idle: Mutex<Vec<T>>,
    max_idle: usize,
    max_retained_bytes: usize,
}

impl<T> BoundedRecycler<T> {
    /// Keeps at most `max_idle` values, none larger than `max_retained_bytes`.
    pub fn new(max_idle: usize, max_retained_bytes: usize) -> Self {
        BoundedRecycler {
            idle: Mutex::new(Vec::with_capacity(max_idle.min(1024))),
            max_idle,
            max_retained_bytes,
        }
    }

    /// Number of values currently kept.
    pub fn idle(&self) -> usize {
        lock(&self.idle).len()
    }
}

impl<T: Recyclable + Default + Send> Recycle<T> for BoundedRecycler<T> {
    fn take(&self) -> T {
        let reused = lock(&self.idle).pop();
        reused.unwrap_or_default()
    }

    fn give(&self, mut value: T) {
        value.reset();
        if value.retained_bytes() > self.max_retained_bytes
            && !value.shrink_to_bytes(self.max_retained_bytes)
        {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < self.max_idle {
            idle.push(value);
        }
    }
}

impl<T> fmt::Debug for BoundedRecycler<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedRecycler")
            .field("max_idle", &self.max_idle)
            .field("max_retained_bytes", &self.max_retained_bytes)
            .finish_non_exhaustive()
    }
}

/// A recycler that keeps nothing: every `take` allocates anew, every `give`
/// drops. The baseline to measure what recycling buys.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRecycling;

impl<T: Default + Send> Recycle<T> for NoRecycling {
    fn take(&self) -> T {
        T::default()
    }

    fn give(&self, value: T) {
        drop(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_values_come_back_empty() {
        let r = BoundedRecycler::<String>::new(2, 1024);
        let mut s = r.take();
        s.push_str("secret");
        r.give(s);
        let s = r.take();
        assert!(s.is_empty());
        assert!(s.capacity() >= 6, "allocation was reused");
    }

    #[test]
    fn no_recycling_never_hands_back_a_given_allocation() {
        let r = NoRecycling;
        let v: Vec<u8> = Vec::with_capacity(4096);
        r.give(v);
        let back: Vec<u8> = r.take();
        assert_eq!(back.capacity(), 0, "a fresh value, not the one given");
    }

    #[test]
    fn bounded_in_count_and_size() {
        let r = BoundedRecycler::<Vec<u8>>::new(2, 64);
        for _ in 0..5 {
            r.give(Vec::with_capacity(8));
        }
        assert_eq!(r.idle(), 2);
        let r = BoundedRecycler::<Vec<u8>>::new(2, 64);
        let mut big = Vec::with_capacity(4096);
        big.extend_from_slice(&[1; 100]);
        r.give(big);
        let back = r.take();
        assert!(back.capacity() <= 64, "oversized buffer shrunk or dropped");
    }

    #[test]
    fn recyclable_reports_capacity_in_bytes() {
        let v: Vec<u64> = Vec::with_capacity(10);
        assert_eq!(v.retained_bytes(), 80);
        let mut m: HashMap<u32, u32> = HashMap::with_capacity(100);
        m.insert(1, 2);
        m.reset();
        assert!(m.is_empty());
        assert!(m.retained_bytes() > 0);
        assert!(m.shrink_to_bytes(0));
    }
}
