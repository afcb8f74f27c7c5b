//! Counters of an encoder or decoder, and the same through `metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hive_types::{FrameError, HiveError};

use super::format::Codec;

/// Which side of the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames written.
    Encode,
    /// Frames read.
    Decode,
}

impl Direction {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))] // a metrics label
    fn as_str(self) -> &'static str {
        match self {
            Direction::Encode => "encode",
            Direction::Decode => "decode",
        }
    }
}

/// Bytes and frames through an encoder or decoder.
#[derive(Debug)]
pub struct WireStats {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))] // metrics labels
    direction: Direction,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    codec: Codec,
    frames: AtomicU64,
    raw_bytes: AtomicU64,
    wire_bytes: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
}

impl WireStats {
    pub(crate) fn new(direction: Direction, codec: Codec) -> Self {
        WireStats {
            direction,
            codec,
            frames: AtomicU64::new(0),
            raw_bytes: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn frame(&self, raw: usize, wire: usize, took: Duration) {
        self.frames.fetch_add(1, Relaxed);
        self.raw_bytes.fetch_add(raw as u64, Relaxed);
        self.wire_bytes.fetch_add(wire as u64, Relaxed);
        self.nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        #[cfg(feature = "metrics")]
        {
            let dir = self.direction.as_str();
            metrics::counter!("hive_wire_frames_total", "direction" => dir).increment(1);
            metrics::counter!("hive_wire_raw_bytes_total", "direction" => dir)
                .increment(raw as u64);
            metrics::counter!("hive_wire_bytes_total", "direction" => dir).increment(wire as u64);
            metrics::histogram!("hive_wire_frame_seconds", "direction" => dir)
                .record(took.as_secs_f64());
            if self.direction == Direction::Encode {
                metrics::counter!("hive_wire_bytes_saved_total")
                    .increment(raw.saturating_sub(wire) as u64);
                if wire > 0 {
                    metrics::gauge!("hive_wire_compression_ratio", "codec" => self.codec.as_str())
                        .set(self.ratio());
                }
            }
        }
    }

    pub(crate) fn rejected(&self, e: &HiveError) {
        self.rejected.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("hive_wire_frames_rejected_total", "reason" => reason(e)).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = reason(e);
    }

    /// Frames encoded or decoded.
    pub fn frames(&self) -> u64 {
        self.frames.load(Relaxed)
    }

    /// Bytes before compression.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes.load(Relaxed)
    }

    /// Bytes on the wire, headers included.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes.load(Relaxed)
    }

    /// Raw bytes per wire byte (headers included); 1.0 before any frame.
    pub fn ratio(&self) -> f64 {
        let wire = self.wire_bytes();
        if wire == 0 {
            1.0
        } else {
            self.raw_bytes() as f64 / wire as f64
        }
    }

    /// Raw megabytes per second of encode or decode time.
    pub fn throughput_mb_s(&self) -> f64 {
        let secs = self.nanos.load(Relaxed) as f64 / 1e9;
        if secs == 0.0 {
            0.0
        } else {
            self.raw_bytes() as f64 / 1e6 / secs
        }
    }

    /// Frames refused by the decoder.
    pub fn rejected_frames(&self) -> u64 {
        self.rejected.load(Relaxed)
    }
}

/// Metric label for why a frame was refused.
fn reason(e: &HiveError) -> &'static str {
    match e {
        HiveError::LimitExceeded { .. } => "limit",
        HiveError::InvalidFrame(f) => match f {
            FrameError::BadMagic { .. } => "bad_magic",
            FrameError::UnsupportedVersion(_) => "version",
            FrameError::UnknownCodec(_) => "codec",
            FrameError::ReservedFlags(_) => "reserved_bits",
            FrameError::Truncated { .. } => "truncated",
            FrameError::ChecksumMismatch { .. } => "checksum",
            FrameError::UnknownDictionary(_) => "dictionary",
            FrameError::Decompress(_) => "decompress",
            _ => "inconsistent",
        },
        _ => "other",
    }
}
