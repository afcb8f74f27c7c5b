//! The wire format (feature `wire`): batches framed, compressed and checked
//! for crossing a process boundary. `docs/wire-format.md` is the byte-level
//! specification; this module is hive's implementation of it.
//!
//! ```
//! use hive_messaging::wire::{EncoderConfig, FrameBody, FrameDecoder, FrameEncoder, Limits};
//! use hive_types::{AgentId, Message};
//!
//! let (a, b) = (AgentId::random(), AgentId::random());
//! let batch: Vec<Message> = (0..50)
//!     .map(|i| Message::new(a, b, format!("{{\"step\":{i},\"note\":\"all nominal\"}}")))
//!     .collect();
//!
//! let mut encoder = FrameEncoder::new(EncoderConfig::default())?; // zstd level 3
//! let mut frame = Vec::new();
//! let info = encoder.encode_messages(&batch, 1, &mut frame)?;
//! assert!(info.frame_len < info.raw_len, "compressed, header included");
//!
//! let mut decoder = FrameDecoder::new(Limits::default())?;
//! let decoded = decoder.decode(&frame)?;
//! assert_eq!(decoded.body, FrameBody::Messages(batch));
//! # Ok::<(), hive_types::HiveError>(())
//! ```
//!
//! Decoding is hostile-input safe: sizes are checked against [`Limits`]
//! before anything they govern is allocated, decompression stops at the
//! declared raw length (a zstd or gzip bomb is an error, not a gigabyte),
//! checksums catch corruption, and every failure is a typed error.
//! Decoded payloads share the decompressed buffer (zero copy), so that
//! buffer is freed with the last payload rather than recycled; encode
//! buffers are drawn from and returned to the `Recycle` seam.
//!
//! Control frames (the link handshake, acknowledgements, routes) and the
//! raw header are the transports' business: their types are public for
//! tests and fuzzing but hidden from these docs.

mod codec;
mod dictionary;
mod format;
mod stats;

pub use codec::{
    DecodedFrame, EncoderConfig, FrameBody, FrameDecoder, FrameEncoder, FrameInfo, Limits,
};
pub use dictionary::Dictionary;
pub use format::{
    message_len, Codec, Control, FrameHeader, CONTROL_RECORD, HEADER_LEN, MAGIC, VERSION,
};
/// Why a frame was refused. Defined in hive-types because
/// [`HiveError::InvalidFrame`](hive_types::HiveError::InvalidFrame) carries
/// it; this is where users of the wire format find it.
pub use hive_types::FrameError;
pub use stats::{Direction, WireStats};
