//! # hive-mempool
//!
//! Object pools for the short-lived buffers a swarm allocates by the
//! million: strings, byte buffers, id lists. A [`Pool`] hands out an object
//! in an RAII guard; on drop the object is reset (nothing one user wrote is
//! seen by the next) and kept for reuse, unless it grew past
//! `max_retained_bytes` or the pool already holds its target of idle objects.
//!
//! ```
//! use hive_mempool::{Pool, PoolConfig};
//!
//! let config = PoolConfig::new("frames", 200).max_retained_bytes(64 << 10);
//! let pool = Pool::with_factory(config, || Vec::<u8>::with_capacity(1024))?;
//!
//! let mut frame = pool.pull();
//! frame.extend_from_slice(b"payload");
//! drop(frame); // cleared and cached for the next pull
//!
//! // Guards that own a pool handle can cross threads.
//! let owned = pool.pull_owned();
//! std::thread::spawn(move || drop(owned)).join().unwrap();
//!
//! let stats = pool.maintain(); // auto-size; publish metrics
//! assert_eq!(stats.misses, 1);
//! assert_eq!(stats.hits, 1);
//! # Ok::<(), hive_types::HiveError>(())
//! ```
//!
//! ## How it is fast
//! Each thread keeps a small cache per pool in front of a shared store (the
//! tcmalloc / Go `sync.Pool` pattern), so a pull and a return touch only
//! thread-owned memory; the store's lock is taken once per chunk of objects.
//! Statistics are per-thread counters summed when read. Idle objects are
//! bounded by credits shared between caches, so `max_idle` holds across
//! threads. A thread's cache goes back to the store when the thread exits.
//!
//! ## Sizing
//! [`Pool::maintain`] (call it periodically, or [`Pool::spawn_maintainer`])
//! applies the auto-sizing rule of [`PoolConfig::next_target`]: above 80%
//! utilisation the target idle count grows by 25%, below 25% it shrinks by
//! 12%, always within `min_idle..=max_idle`; idle objects above the target
//! are freed, so memory comes back down after a burst.
//!
//! ## When not to use a pool
//! For small buffers (up to ~1 KiB) glibc's thread cache is already fast; a
//! pool pays when objects are large (tens of KiB and up), when they carry
//! capacity worth keeping (a grown `String` or `HashMap`), or when
//! allocation counts matter (allocator contention, fragmentation). See the
//! crate README for measured ratios.
//!
//! [`SwarmMemoryPools`] bundles the seed design's three pools. A `Pool<T>`
//! implements the [`Recycle`] seam, so messaging can
//! draw its buffers from it.
//!
//! Feature `metrics` (default): `maintain()` publishes the statistics
//! through the `metrics` facade, labelled `pool=<name>`.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod config;
mod credits;
mod guard;
mod pool;
mod shared;
mod stats;
mod swarm;
mod sync;

pub use config::PoolConfig;
pub use guard::{Pooled, PooledOwned};
pub use hive_types::{Recyclable, Recycle};
pub use pool::{Maintainer, Pool};
pub use stats::PoolStats;
pub use swarm::{SwarmMemoryPools, SwarmPoolsConfig, SwarmPoolsStats};
pub use uuid::Uuid;
