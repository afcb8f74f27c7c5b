//! [`Optimizations`]: the switches of the ablation table, and the small
//! types the builder hands the system.

use hive_types::Message;

/// Which optimizations are on (all by default). Turning one off is how the
/// report's ablation table measures what it buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optimizations {
    /// Per-destination batching (off: every message travels alone).
    pub batching: bool,
    /// Compression of frames that leave the process (off: uncompressed).
    pub compression: bool,
    /// Reuse of batch buffers and pooled scratch objects (off: allocate).
    pub pools: bool,
    /// Load-aware placement and priorities on the balancer (off: round
    /// robin, every task `Normal`).
    pub load_aware: bool,
}

impl Optimizations {
    /// The frame encoder for transports: zstd when compression is on,
    /// uncompressed frames when it is off.
    #[cfg(feature = "wire")]
    pub fn encoder_config(&self) -> hive_messaging::wire::EncoderConfig {
        if self.compression {
            hive_messaging::wire::EncoderConfig::default()
        } else {
            hive_messaging::wire::EncoderConfig::uncompressed()
        }
    }
}

impl Default for Optimizations {
    fn default() -> Self {
        Optimizations {
            batching: true,
            compression: true,
            pools: true,
            load_aware: true,
        }
    }
}

/// A batch's message buffer, the type messaging recycles.
pub(crate) type BatchBuffer = std::collections::VecDeque<Message>;

/// How allocations are counted, when the program installed a counting
/// global allocator: a function returning allocations so far.
pub type AllocationCounter = fn() -> u64;
