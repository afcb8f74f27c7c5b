//! The state behind a pool: per-thread caches in front of a bounded store.
//!
//! The fast path touches only the calling thread's cache (no shared lock,
//! no locked instruction). The shared store is locked only to move a chunk
//! of objects between it and a thread cache.
//!
//! Objects live in a `Box` for their whole pooled life, so a pull or a
//! return moves one pointer rather than the object: moving a `Vec` by value
//! right after the user wrote its length stalls the CPU's store forwarding
//! and cost a third of the fast path in measurements.
//!
//! The idle bound is kept with *credits*: every idle object, wherever it
//! sits, holds one credit; a thread cache may also hold spare credits for
//! objects it expects back. `credits` counts the free ones, so
//! `idle objects + spare + free == target` and idle never exceeds the target
//! (at most `max_idle`). Shrinking the target makes `credits` negative;
//! `trim` then drops stored objects until it is not.

use std::any::type_name;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

use crate::config::PoolConfig;
use crate::credits::Credits;
use crate::stats::{bump, ThreadStats, Totals};

/// How a pool makes, resets and measures its objects.
pub(crate) trait ItemOps<T>: Send + Sync {
    fn create(&self) -> T;
    /// Resets `item` and makes it fit `max_bytes` if it can; returns the
    /// heap bytes it keeps, or `None` when it must be dropped.
    fn recycle(&self, item: &mut T, max_bytes: usize) -> Option<usize>;
}

/// Idle objects with the heap bytes each retains.
struct Store<T> {
    items: Vec<(Box<T>, usize)>,
    bytes: usize,
}

/// One thread's cache for one pool.
pub(crate) struct LocalCache<T> {
    items: Vec<(Box<T>, usize)>,
    bytes: usize,
    /// Credits held for objects expected back.
    spare: usize,
    stats: Arc<ThreadStats>,
}

/// A thread's cache and the thread that owns it now.
pub(crate) struct Local<T> {
    /// [`exit::token`] of the thread whose exit hook covers this cache. A
    /// new thread can inherit a slot of one that exited (`thread_local`
    /// reuses ids): it registers its own hook when it first uses it.
    owner: Cell<u64>,
    cache: RefCell<LocalCache<T>>,
}

impl<T> std::ops::Deref for Local<T> {
    type Target = RefCell<LocalCache<T>>;

    fn deref(&self) -> &Self::Target {
        &self.cache
    }
}

/// A thread's cache, padded so two threads' caches never share a cache line.
pub(crate) type Slot<T> = CachePadded<Local<T>>;

pub(crate) struct Shared<T: Send + 'static> {
    pub(crate) config: PoolConfig,
    ops: Box<dyn ItemOps<T>>,
    locals: ThreadLocal<Slot<T>>,
    /// Objects moved per store transfer, and most spare credits a cache keeps.
    chunk: usize,
    max_spare: usize,
    store: Mutex<Store<T>>,
    /// Free credits; negative after the target shrank.
    credits: Credits,
    target: AtomicUsize,
    open: AtomicBool,
    /// Counters of operations that bypassed the thread caches (any thread).
    bypass: ThreadStats,
    /// Every thread cache's counters, for `totals()`.
    threads: Mutex<Vec<Arc<ThreadStats>>>,
    pub(crate) peak_in_use: AtomicU64,
    pub(crate) samples: Mutex<std::collections::VecDeque<f64>>,
}

use hive_types::sync::lock;

impl<T: Send + 'static> Shared<T> {
    pub(crate) fn new(config: PoolConfig, ops: Box<dyn ItemOps<T>>) -> Arc<Self> {
        let target = config.start_target();
        let chunk = (config.thread_cache / 2).max(1);
        let shared = Arc::new(Shared {
            chunk,
            max_spare: 2 * chunk,
            ops,
            locals: ThreadLocal::new(),
            store: Mutex::new(Store {
                items: Vec::new(),
                bytes: 0,
            }),
            credits: Credits::new(target),
            target: AtomicUsize::new(target),
            open: AtomicBool::new(true),
            bypass: ThreadStats::default(),
            threads: Mutex::new(Vec::new()),
            peak_in_use: AtomicU64::new(0),
            samples: Mutex::new(std::collections::VecDeque::new()),
            config,
        });
        shared.fill_store(shared.config.prefill.max(shared.config.min_idle));
        shared
    }

    /// This thread's cache, created on first use, with this thread's exit
    /// hook registered (also when the slot was inherited from a thread that
    /// exited); `None` when thread caches are off.
    #[inline]
    pub(crate) fn slot(self: &Arc<Self>) -> Option<&Slot<T>> {
        if self.config.thread_cache == 0 {
            return None;
        }
        let slot = self.locals.get_or(|| CachePadded::new(self.new_local()));
        let me = exit::token();
        if slot.owner.get() != me {
            self.adopt(slot, me);
        }
        Some(slot)
    }

    #[cold]
    fn new_local(self: &Arc<Self>) -> Local<T> {
        let stats = Arc::new(ThreadStats::default());
        lock(&self.threads).push(stats.clone());
        Local {
            owner: Cell::new(0),
            cache: RefCell::new(LocalCache {
                items: Vec::with_capacity(self.config.thread_cache),
                bytes: 0,
                spare: 0,
                stats,
            }),
        }
    }

    /// This thread starts using `slot`: its exit gives the cache back.
    #[cold]
    fn adopt(self: &Arc<Self>, slot: &Local<T>, me: u64) {
        slot.owner.set(me);
        exit::register(Arc::downgrade(self) as Weak<dyn exit::ThreadExit>);
    }

    /// An object: from this thread's cache, else the store, else new.
    #[inline]
    pub(crate) fn take(self: &Arc<Self>) -> Box<T> {
        self.take_with(self.slot())
    }

    /// An object, using this thread's cache `slot` if given.
    #[inline]
    pub(crate) fn take_with(&self, slot: Option<&Slot<T>>) -> Box<T> {
        if let Some(slot) = slot {
            if let Ok(mut cache) = slot.try_borrow_mut() {
                if cache.items.is_empty() {
                    self.refill(&mut cache);
                }
                if let Some((item, bytes)) = cache.items.pop() {
                    cache.bytes -= bytes;
                    cache.spare += 1;
                    if cache.spare > self.max_spare {
                        self.release_spare(&mut cache);
                    }
                    if self.config.stats {
                        bump(&cache.stats.hits);
                    }
                    mirror(&cache);
                    return item;
                }
                if self.config.stats {
                    bump(&cache.stats.misses);
                }
                drop(cache);
                return Box::new(self.ops.create());
            }
        }
        self.take_bypassing_cache()
    }

    #[cold]
    fn release_spare(&self, cache: &mut LocalCache<T>) {
        let give_up = cache.spare - self.chunk;
        cache.spare -= give_up;
        self.credits.give(give_up);
    }

    /// Moves up to a chunk of objects (with their credits) from the store.
    #[cold]
    fn refill(&self, cache: &mut LocalCache<T>) {
        let mut store = lock(&self.store);
        let from = store.items.len().saturating_sub(self.chunk);
        let mut moved = 0;
        for (item, bytes) in store.items.drain(from..) {
            moved += bytes;
            cache.items.push((item, bytes));
        }
        store.bytes -= moved;
        cache.bytes += moved;
    }

    fn take_bypassing_cache(&self) -> Box<T> {
        let reused = {
            let mut store = lock(&self.store);
            let popped = store.items.pop();
            if let Some((_, bytes)) = &popped {
                store.bytes -= bytes;
            }
            popped
        };
        match reused {
            Some((item, _)) => {
                self.credits.give(1);
                self.bypass.hits.fetch_add(1, Ordering::Relaxed);
                item
            }
            None => {
                self.bypass.misses.fetch_add(1, Ordering::Relaxed);
                Box::new(self.ops.create())
            }
        }
    }

    /// Takes back an object: reset, size-checked, then cached or dropped.
    #[inline]
    pub(crate) fn give(self: &Arc<Self>, item: Box<T>) {
        self.give_with(self.slot(), item);
    }

    /// Takes back an object through this thread's cache `slot` if given.
    #[inline]
    pub(crate) fn give_with(&self, slot: Option<&Slot<T>>, mut item: Box<T>) {
        let kept_bytes = self.ops.recycle(&mut item, self.config.max_retained_bytes);
        if let Some(slot) = slot {
            if let Ok(mut cache) = slot.try_borrow_mut() {
                if self.config.stats {
                    bump(&cache.stats.returns);
                }
                let refused = match kept_bytes {
                    Some(bytes) if self.open.load(Ordering::Relaxed) => {
                        self.put_cached(&mut cache, item, bytes)
                    }
                    _ => Some(item),
                };
                if refused.is_some() && self.config.stats {
                    bump(&cache.stats.discards);
                }
                drop(cache);
                // A refused object is dropped here, outside the borrow: its
                // destructor may use this pool again.
                drop(refused);
                return;
            }
        }
        self.give_bypassing_cache(item, kept_bytes);
    }

    /// Caches `item`, or hands it back when the idle bound is reached.
    #[inline]
    fn put_cached(&self, cache: &mut LocalCache<T>, item: Box<T>, bytes: usize) -> Option<Box<T>> {
        if cache.items.len() >= self.config.thread_cache {
            self.spill(cache);
        }
        if cache.spare == 0 {
            cache.spare = self.credits.acquire(self.chunk);
            if cache.spare == 0 {
                mirror(cache);
                return Some(item);
            }
        }
        cache.spare -= 1;
        cache.bytes += bytes;
        cache.items.push((item, bytes));
        mirror(cache);
        None
    }

    /// Moves the coldest chunk of a full cache (with its credits) to the store.
    #[cold]
    fn spill(&self, cache: &mut LocalCache<T>) {
        let n = self.chunk.min(cache.items.len());
        let mut store = lock(&self.store);
        for (item, bytes) in cache.items.drain(..n) {
            cache.bytes -= bytes;
            store.bytes += bytes;
            store.items.push((item, bytes));
        }
    }

    fn give_bypassing_cache(&self, item: Box<T>, kept_bytes: Option<usize>) {
        self.bypass.returns.fetch_add(1, Ordering::Relaxed);
        let keep = kept_bytes.filter(|_| self.open.load(Ordering::Relaxed));
        if let Some(bytes) = keep {
            if self.credits.acquire(1) == 1 {
                let mut store = lock(&self.store);
                store.bytes += bytes;
                store.items.push((item, bytes));
                return;
            }
        }
        self.bypass.discards.fetch_add(1, Ordering::Relaxed);
        drop(item);
    }

    /// Counts an object taken out of the pool for good.
    pub(crate) fn note_detached(self: &Arc<Self>) {
        if !self.config.stats {
            return;
        }
        match self.slot().map(|slot| slot.try_borrow_mut()) {
            Some(Ok(cache)) => bump(&cache.stats.detached),
            _ => {
                self.bypass.detached.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Event counters and cached objects summed over all threads.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        totals.add(&self.bypass);
        for t in lock(&self.threads).iter() {
            totals.add(t);
        }
        totals
    }

    /// Objects and bytes in the shared store.
    pub(crate) fn stored(&self) -> (usize, usize) {
        let store = lock(&self.store);
        (store.items.len(), store.bytes)
    }

    pub(crate) fn target(&self) -> usize {
        self.target.load(Ordering::Acquire)
    }

    /// Moves the target; the difference goes to (or comes out of) the free
    /// credits, and `trim` drops what no longer fits.
    pub(crate) fn set_target(&self, target: usize) {
        let old = self.target.swap(target, Ordering::AcqRel);
        self.credits.shift(target as isize - old as isize);
        self.trim();
    }

    /// Drops stored objects while there are more idle objects than credits.
    pub(crate) fn trim(&self) {
        let over = self.credits.owed();
        if over == 0 {
            return;
        }
        let dropped: Vec<(Box<T>, usize)> = {
            let mut store = lock(&self.store);
            let from = store.items.len().saturating_sub(over);
            let out: Vec<_> = store.items.drain(from..).collect();
            store.bytes -= out.iter().map(|(_, b)| b).sum::<usize>();
            out
        };
        self.credits.give(dropped.len());
        drop(dropped);
    }

    /// Creates objects into the store until it holds `want` (within credits).
    pub(crate) fn fill_store(&self, want: usize) {
        let have = lock(&self.store).items.len();
        for _ in have..want {
            if self.credits.acquire(1) == 0 {
                return;
            }
            let mut item = Box::new(self.ops.create());
            match self.ops.recycle(&mut item, self.config.max_retained_bytes) {
                Some(bytes) => {
                    let mut store = lock(&self.store);
                    store.bytes += bytes;
                    store.items.push((item, bytes));
                }
                None => {
                    self.credits.give(1);
                    return;
                }
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// The last `Pool` handle is gone: refuse returns, free the store and
    /// this thread's cache. Other threads' caches are freed with the pool.
    pub(crate) fn close(self: &Arc<Self>) {
        self.open.store(false, Ordering::Release);
        let stored: Vec<(Box<T>, usize)> = {
            let mut store = lock(&self.store);
            store.bytes = 0;
            store.items.drain(..).collect()
        };
        drop(stored);
        self.give_back_thread_cache();
    }

    /// Moves this thread's cached objects to the store (or drops them when
    /// the pool is closed) and frees its spare credits.
    fn give_back_thread_cache(&self) {
        let Some(cell) = self.locals.get() else {
            return;
        };
        let Ok(mut cache) = cell.try_borrow_mut() else {
            return;
        };
        let items: Vec<(Box<T>, usize)> = cache.items.drain(..).collect();
        let spare = std::mem::take(&mut cache.spare);
        cache.bytes = 0;
        mirror(&cache);
        drop(cache);
        self.credits.give(spare);
        if self.is_open() {
            let mut store = lock(&self.store);
            for (item, bytes) in items {
                store.bytes += bytes;
                store.items.push((item, bytes));
            }
        } else {
            self.credits.give(items.len());
            drop(items);
        }
    }
}

/// Publishes a cache's size for `stats()` (owner-only relaxed stores).
#[inline]
fn mirror<T>(cache: &LocalCache<T>) {
    cache
        .stats
        .cached
        .store(cache.items.len() as u64, Ordering::Relaxed);
    cache
        .stats
        .cached_bytes
        .store(cache.bytes as u64, Ordering::Relaxed);
}

impl<T: Send + 'static> exit::ThreadExit for Shared<T> {
    fn thread_exiting(&self) {
        self.give_back_thread_cache();
    }
}

impl<T: Send + 'static> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.config.name)
            .field("item", &type_name::<T>())
            .field("target", &self.target())
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

/// Gives each thread's caches back to their pools when the thread exits.
mod exit {
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Weak;

    pub(crate) trait ThreadExit: Send + Sync {
        fn thread_exiting(&self);
    }

    struct Hooks(Vec<Weak<dyn ThreadExit>>);

    impl Drop for Hooks {
        fn drop(&mut self) {
            for hook in self.0.drain(..) {
                if let Some(pool) = hook.upgrade() {
                    pool.thread_exiting();
                }
            }
        }
    }

    thread_local! {
        static HOOKS: RefCell<Hooks> = const { RefCell::new(Hooks(Vec::new())) };
        static TOKEN: Cell<u64> = const { Cell::new(0) };
    }

    static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

    /// A number no other thread of this process ever gets (never 0).
    #[inline]
    pub(crate) fn token() -> u64 {
        TOKEN
            .try_with(|t| {
                if t.get() == 0 {
                    t.set(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
                }
                t.get()
            })
            .unwrap_or(u64::MAX) // during teardown: never anyone's owner
    }

    /// Registers `pool` to be called when this thread exits. Hooks of pools
    /// that are gone are pruned here, so the list stays as long as the
    /// number of live pools this thread used.
    pub(crate) fn register(pool: Weak<dyn ThreadExit>) {
        // During thread teardown the hook list may be gone; the cache then
        // stays with the pool's per-thread slot and is freed with the pool.
        let _ = HOOKS.try_with(|hooks| {
            if let Ok(mut hooks) = hooks.try_borrow_mut() {
                hooks.0.retain(|h| h.strong_count() > 0);
                hooks.0.push(pool);
            }
        });
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
