//! [`SwarmMemoryPools`]: the seed design's three pools, ready to use.

use std::sync::Arc;

use hive_types::{HiveResult, SharedRecycler};
use uuid::Uuid;

use crate::{Pool, PoolConfig, PoolStats};

/// Sizes of the three swarm pools.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmPoolsConfig {
    /// Pool of `String` (seed design: 500).
    pub strings: PoolConfig,
    /// Capacity a new string starts with.
    pub string_capacity: usize,
    /// Pool of `Vec<u8>` byte buffers (seed design: 200).
    pub byte_buffers: PoolConfig,
    /// Capacity a new byte buffer starts with.
    pub byte_buffer_capacity: usize,
    /// Pool of `Vec<Uuid>` lists (seed design: 100).
    pub uuid_lists: PoolConfig,
    /// Capacity a new UUID list starts with.
    pub uuid_list_capacity: usize,
}

impl Default for SwarmPoolsConfig {
    fn default() -> Self {
        SwarmPoolsConfig {
            strings: PoolConfig::new("strings", 500).max_retained_bytes(64 << 10),
            string_capacity: 256,
            byte_buffers: PoolConfig::new("byte_buffers", 200).max_retained_bytes(1 << 20),
            byte_buffer_capacity: 4096,
            uuid_lists: PoolConfig::new("uuid_lists", 100).max_retained_bytes(64 << 10),
            uuid_list_capacity: 16,
        }
    }
}

/// The seed design's `SwarmMemoryPools`: strings, byte buffers and UUID lists.
///
/// ```
/// use hive_mempool::SwarmMemoryPools;
///
/// let pools = SwarmMemoryPools::new(Default::default())?;
/// let mut buf = pools.byte_buffers().pull();
/// buf.extend_from_slice(b"frame");
/// drop(buf);
/// let report = pools.stats();
/// assert_eq!(report.byte_buffers.returns, 1);
/// assert!(report.bytes_retained >= 4096);
/// # Ok::<(), hive_types::HiveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SwarmMemoryPools {
    strings: Pool<String>,
    byte_buffers: Pool<Vec<u8>>,
    uuid_lists: Pool<Vec<Uuid>>,
}

/// Statistics of the three swarm pools together.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SwarmPoolsStats {
    /// The string pool.
    pub strings: PoolStats,
    /// The byte-buffer pool.
    pub byte_buffers: PoolStats,
    /// The UUID-list pool.
    pub uuid_lists: PoolStats,
    /// Hits over pulls across the three pools (1.0 before any pull).
    pub hit_ratio: f64,
    /// Heap bytes retained by idle objects of all three pools.
    pub bytes_retained: u64,
}

impl SwarmMemoryPools {
    /// Builds the three pools.
    pub fn new(config: SwarmPoolsConfig) -> HiveResult<Self> {
        let (sc, bc, uc) = (
            config.string_capacity,
            config.byte_buffer_capacity,
            config.uuid_list_capacity,
        );
        Ok(SwarmMemoryPools {
            strings: Pool::with_factory(config.strings, move || String::with_capacity(sc))?,
            byte_buffers: Pool::with_factory(config.byte_buffers, move || Vec::with_capacity(bc))?,
            uuid_lists: Pool::with_factory(config.uuid_lists, move || Vec::with_capacity(uc))?,
        })
    }

    /// The string pool.
    pub fn strings(&self) -> &Pool<String> {
        &self.strings
    }

    /// The byte-buffer pool.
    pub fn byte_buffers(&self) -> &Pool<Vec<u8>> {
        &self.byte_buffers
    }

    /// The UUID-list pool.
    pub fn uuid_lists(&self) -> &Pool<Vec<Uuid>> {
        &self.uuid_lists
    }

    /// The byte-buffer pool as a [`Recycle`](hive_types::Recycle) seam, for
    /// messaging's encode and decode buffers.
    pub fn byte_buffer_recycler(&self) -> SharedRecycler<Vec<u8>> {
        Arc::new(self.byte_buffers.clone())
    }

    /// One auto-sizing step on each pool; see [`Pool::maintain`].
    pub fn maintain(&self) -> SwarmPoolsStats {
        combine(
            self.strings.maintain(),
            self.byte_buffers.maintain(),
            self.uuid_lists.maintain(),
        )
    }

    /// A snapshot of the three pools.
    pub fn stats(&self) -> SwarmPoolsStats {
        combine(
            self.strings.stats(),
            self.byte_buffers.stats(),
            self.uuid_lists.stats(),
        )
    }
}

fn combine(strings: PoolStats, byte_buffers: PoolStats, uuid_lists: PoolStats) -> SwarmPoolsStats {
    let all = [&strings, &byte_buffers, &uuid_lists];
    let hits: u64 = all.iter().map(|s| s.hits).sum();
    let misses: u64 = all.iter().map(|s| s.misses).sum();
    let bytes_retained = all.iter().map(|s| s.bytes_retained).sum();
    SwarmPoolsStats {
        hit_ratio: crate::stats::hit_ratio(hits, misses),
        bytes_retained,
        strings,
        byte_buffers,
        uuid_lists,
    }
}
