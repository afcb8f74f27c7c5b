//! [`Pool`]: the public handle.

use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use hive_types::{HiveResult, Recyclable, Recycle};

use crate::config::PoolConfig;
use crate::guard::{Pooled, PooledOwned};
use crate::shared::{ItemOps, Shared};
use crate::stats::{self, PoolStats};
use hive_types::sync::lock;

/// A bounded, self-sizing pool of `T`.
///
/// Cloning a `Pool` makes another handle to the same pool. When the last
/// handle is dropped the pool closes: objects still out are dropped when
/// they come back, and cached objects are freed.
///
/// ```
/// use hive_mempool::{Pool, PoolConfig};
///
/// let pool = Pool::<String>::new(PoolConfig::new("names", 64))?;
/// {
///     let mut name = pool.pull();
///     name.push_str("agent-7");
/// } // reset and returned here
/// assert!(pool.pull().is_empty(), "nothing one user wrote reaches the next");
/// assert_eq!(pool.stats().hits, 1);
/// # Ok::<(), hive_types::HiveError>(())
/// ```
pub struct Pool<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    // A handle counts as one of the pool's owners; guards do not.
    handle: Arc<HandleToken<T>>,
}

/// Closes the pool when the last [`Pool`] handle drops.
struct HandleToken<T: Send + 'static>(Weak<Shared<T>>);

impl<T: Send + 'static> Drop for HandleToken<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.close();
        }
    }
}

struct RecyclableOps<F>(F);

impl<T: Recyclable, F: Fn() -> T + Send + Sync> ItemOps<T> for RecyclableOps<F> {
    fn create(&self) -> T {
        (self.0)()
    }

    #[inline]
    fn recycle(&self, item: &mut T, max_bytes: usize) -> Option<usize> {
        item.reset();
        let bytes = item.retained_bytes();
        if bytes <= max_bytes {
            Some(bytes)
        } else if item.shrink_to_bytes(max_bytes) {
            Some(item.retained_bytes())
        } else {
            None
        }
    }
}

struct ClosureOps<C, R, T> {
    create: C,
    reset: R,
    _item: PhantomData<fn() -> T>,
}

impl<T, C, R> ItemOps<T> for ClosureOps<C, R, T>
where
    C: Fn() -> T + Send + Sync,
    R: Fn(&mut T) + Send + Sync,
{
    fn create(&self) -> T {
        (self.create)()
    }

    fn recycle(&self, item: &mut T, max_bytes: usize) -> Option<usize> {
        (self.reset)(item);
        Some(size_of::<T>()).filter(|&b| b <= max_bytes)
    }
}

impl<T: Recyclable + Default + Send + 'static> Pool<T> {
    /// A pool that creates objects with `T::default()`.
    pub fn new(config: PoolConfig) -> HiveResult<Self> {
        Pool::with_factory(config, T::default)
    }
}

impl<T: Recyclable + Send + 'static> Pool<T> {
    /// A pool that creates objects with `create`, for example
    /// `|| Vec::with_capacity(4096)`.
    pub fn with_factory(
        config: PoolConfig,
        create: impl Fn() -> T + Send + Sync + 'static,
    ) -> HiveResult<Self> {
        Pool::from_ops(config, Box::new(RecyclableOps(create)))
    }
}

impl<T: Send + 'static> Pool<T> {
    /// A pool of any type, with its own reset step. Each idle object counts
    /// `size_of::<T>()` bytes, since the pool cannot see its heap.
    ///
    /// ```
    /// use hive_mempool::{Pool, PoolConfig};
    ///
    /// #[derive(Default)]
    /// struct Scratch { cells: [u32; 16], used: usize }
    ///
    /// let pool = Pool::with_reset(PoolConfig::new("scratch", 8), Scratch::default, |s| {
    ///     s.cells = [0; 16];
    ///     s.used = 0;
    /// })?;
    /// pool.pull().used = 3;
    /// assert_eq!(pool.pull().used, 0);
    /// # Ok::<(), hive_types::HiveError>(())
    /// ```
    pub fn with_reset(
        config: PoolConfig,
        create: impl Fn() -> T + Send + Sync + 'static,
        reset: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> HiveResult<Self> {
        Pool::from_ops(
            config,
            Box::new(ClosureOps {
                create,
                reset,
                _item: PhantomData,
            }),
        )
    }

    fn from_ops(config: PoolConfig, ops: Box<dyn ItemOps<T>>) -> HiveResult<Self> {
        config.validate()?;
        let shared = Shared::new(config, ops);
        let token = Arc::new(HandleToken(Arc::downgrade(&shared)));
        Ok(Pool {
            shared,
            handle: token,
        })
    }

    /// Takes an object (reused when one is idle); it comes back on drop.
    #[inline]
    pub fn pull(&self) -> Pooled<'_, T> {
        let slot = self.shared.slot();
        Pooled {
            item: Some(self.shared.take_with(slot)),
            slot,
            shared: &self.shared,
        }
    }

    /// Like [`pull`](Self::pull), but the guard owns a handle to the pool so
    /// it can be sent to another thread and returned there.
    pub fn pull_owned(&self) -> PooledOwned<T> {
        PooledOwned {
            item: Some(self.shared.take()),
            shared: self.shared.clone(),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// A snapshot of the pool's counters and sizes; also updates the peak.
    pub fn stats(&self) -> PoolStats {
        let totals = self.shared.totals();
        let (stored, stored_bytes) = self.shared.stored();
        let in_use = totals.in_use();
        let peak = self
            .shared
            .peak_in_use
            .fetch_max(in_use, Ordering::AcqRel)
            .max(in_use);
        PoolStats {
            name: self.shared.config.name.to_string(),
            hits: totals.hits,
            misses: totals.misses,
            returns: totals.returns,
            discards: totals.discards,
            detached: totals.detached,
            hit_ratio: stats::hit_ratio(totals.hits, totals.misses),
            in_use,
            peak_in_use: peak,
            idle: stored as u64 + totals.cached,
            target: self.shared.target() as u64,
            max_idle: self.shared.config.max_idle as u64,
            bytes_retained: stored_bytes as u64 + totals.cached_bytes,
        }
    }

    /// One auto-sizing step, meant to run periodically off the hot path
    /// (hive-core's monitor calls it every tick).
    ///
    /// Samples utilisation (in use / (in use + idle)); with the mean of the
    /// last `window` samples, grows the target by 25% above 80% and shrinks
    /// it by 12% below 25%, within `min_idle..=max_idle`; drops stored
    /// objects above the new target; tops the store up to `min_idle`; and
    /// publishes the statistics through the `metrics` facade. Without
    /// per-operation statistics (`stats: false`) in-use is unknown and the
    /// target stays where it is.
    pub fn maintain(&self) -> PoolStats {
        let before = self.stats();
        if self.shared.config.stats {
            let config = &self.shared.config;
            let mean = {
                let mut samples = lock(&self.shared.samples);
                samples.push_back(before.utilisation());
                while samples.len() > config.window {
                    samples.pop_front();
                }
                samples.iter().sum::<f64>() / samples.len().max(1) as f64
            };
            self.shared
                .set_target(config.next_target(self.shared.target(), mean));
        }
        self.shared.trim();
        self.shared.fill_store(self.shared.config.min_idle);
        let after = self.stats();
        stats::publish(&after);
        after
    }

    /// Starts a thread that calls [`maintain`](Self::maintain) every
    /// `interval` until the returned [`Maintainer`] or the pool is dropped.
    pub fn spawn_maintainer(&self, interval: Duration) -> HiveResult<Maintainer> {
        let weak = Arc::downgrade(&self.handle);
        let shared = Arc::downgrade(&self.shared);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hive-pool-{}", self.shared.config.name))
            .spawn(move || loop {
                let (lock, wake) = &*signal;
                let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (stopped, _) = wake
                    .wait_timeout_while(stopped, interval, |s| !*s)
                    .unwrap_or_else(PoisonError::into_inner);
                if *stopped {
                    return;
                }
                drop(stopped);
                // Only a live handle keeps the maintainer going.
                let (Some(handle), Some(shared)) = (weak.upgrade(), shared.upgrade()) else {
                    return;
                };
                Pool { shared, handle }.maintain();
            })?;
        Ok(Maintainer {
            stop,
            thread: Some(thread),
        })
    }
}

impl<T: Send + 'static> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
            handle: self.handle.clone(),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shared, f)
    }
}

/// The pool as a buffer source for other components (the hive-types seam):
/// `take` pulls an object without a guard, `give` returns one.
///
/// Objects are boxed inside the pool, so each `take` frees and each `give`
/// allocates one small box (the object's header, 24 bytes for a `Vec`); the
/// object's own buffer is what gets reused. Worth it for buffers of a few
/// KiB and up; for small ones a guard (`pull`) is the cheaper path.
impl<T: Send + 'static> Recycle<T> for Pool<T> {
    fn take(&self) -> T {
        *self.shared.take()
    }

    fn give(&self, value: T) {
        self.shared.give(Box::new(value));
    }
}

/// Background maintenance started by [`Pool::spawn_maintainer`]; stops and
/// joins its thread when dropped.
#[derive(Debug)]
pub struct Maintainer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Maintainer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
