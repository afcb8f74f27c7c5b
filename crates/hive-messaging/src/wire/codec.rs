//! [`FrameEncoder`] and [`FrameDecoder`]: batches to frames and back.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hive_types::{BoundedRecycler, FrameError, HiveError, HiveResult, Message, SharedRecycler};

use super::dictionary::Dictionary;
use super::format::{
    read_control, read_message, write_control, write_message, Codec, Control, FrameHeader, Reader,
    HEADER_LEN,
};
use super::stats::{Direction, WireStats};

/// How frames are compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Codec for bodies at or above the threshold (`Zstd` by default; a
    /// dictionary, when set, makes it `ZstdDictionary`).
    pub codec: Codec,
    /// zstd level (3) or gzip level (6).
    pub level: i32,
    /// Bodies smaller than this many bytes are sent uncompressed (1 KiB).
    pub threshold: usize,
    /// Trained zstd dictionary to compress with.
    pub dictionary: Option<Dictionary>,
    /// Largest raw body accepted (16 MiB; also the decoder's default).
    pub max_raw: usize,
    /// Compressed bodies that shrink more than this many times are sent
    /// uncompressed, so a peer's expansion limit (64 by default) accepts them.
    pub max_expansion: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            codec: Codec::Zstd,
            level: 3,
            threshold: 1024,
            dictionary: None,
            max_raw: 16 << 20,
            max_expansion: 64,
        }
    }
}

impl EncoderConfig {
    /// gzip at level 6 (for peers without zstd).
    pub fn gzip() -> Self {
        EncoderConfig {
            codec: Codec::Gzip,
            level: 6,
            ..Default::default()
        }
    }

    /// zstd with a trained dictionary.
    pub fn with_dictionary(dictionary: Dictionary) -> Self {
        EncoderConfig {
            codec: Codec::ZstdDictionary,
            dictionary: Some(dictionary),
            ..Default::default()
        }
    }

    /// No compression at all.
    pub fn uncompressed() -> Self {
        EncoderConfig {
            codec: Codec::None,
            ..Default::default()
        }
    }
}

/// What one encoded frame took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Records in it.
    pub records: usize,
    /// Raw body bytes.
    pub raw_len: usize,
    /// Whole frame bytes (header included).
    pub frame_len: usize,
    /// Codec used.
    pub codec: Codec,
}

fn config_error(reason: String) -> HiveError {
    HiveError::Config {
        field: "codec",
        reason,
    }
}

/// Encodes batches into frames. Keeps its compression context between
/// frames; buffers come from (and go back to) a recycler.
pub struct FrameEncoder {
    config: EncoderConfig,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    recycler: SharedRecycler<Vec<u8>>,
    stats: WireStats,
}

impl FrameEncoder {
    /// An encoder with its own plain recycler.
    pub fn new(config: EncoderConfig) -> HiveResult<Self> {
        FrameEncoder::with_recycler(config, Arc::new(BoundedRecycler::new(4, 16 << 20)))
    }

    /// An encoder drawing buffers from `recycler` (the hive-types seam).
    pub fn with_recycler(
        config: EncoderConfig,
        recycler: SharedRecycler<Vec<u8>>,
    ) -> HiveResult<Self> {
        let zstd = match (&config.codec, &config.dictionary) {
            (Codec::ZstdDictionary, Some(d)) => Some(zstd::bulk::Compressor::with_dictionary(
                config.level,
                d.as_bytes(),
            )?),
            (Codec::ZstdDictionary, None) => {
                return Err(config_error(
                    "codec ZstdDictionary needs a dictionary".into(),
                ))
            }
            (Codec::Zstd, _) => Some(zstd::bulk::Compressor::new(config.level)?),
            _ => None,
        };
        if config.codec == Codec::Gzip && !(0..=9).contains(&config.level) {
            return Err(config_error(format!(
                "gzip level must be 0..=9, not {}",
                config.level
            )));
        }
        Ok(FrameEncoder {
            stats: WireStats::new(Direction::Encode, config.codec),
            config,
            zstd,
            recycler,
        })
    }

    /// Counters of what this encoder produced.
    pub fn stats(&self) -> &WireStats {
        &self.stats
    }

    /// The compression level it encodes at now.
    pub fn level(&self) -> i32 {
        self.config.level
    }

    /// Changes the compression level for the frames that follow (zstd: any
    /// level zstd accepts, negative ones the fastest; gzip: 0 to 9).
    pub fn set_level(&mut self, level: i32) -> HiveResult<()> {
        match &mut self.zstd {
            Some(z) => z.set_compression_level(level)?,
            None if self.config.codec == Codec::Gzip && !(0..=9).contains(&level) => {
                return Err(config_error(format!(
                    "gzip level must be 0..=9, not {level}"
                )))
            }
            None => {}
        }
        self.config.level = level;
        Ok(())
    }

    /// Appends one frame holding `messages` to `out`.
    pub fn encode_messages<'a>(
        &mut self,
        messages: impl IntoIterator<Item = &'a Message>,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> HiveResult<FrameInfo> {
        let mut raw = self.recycler.take();
        let mut count = 0usize;
        for m in messages {
            write_message(&mut raw, m);
            count += 1;
        }
        let info = self.finish(&raw, count, false, sequence, out);
        self.recycler.give(raw);
        info
    }

    /// Appends one control frame to `out`.
    #[doc(hidden)] // control frames are the transports' business
    pub fn encode_control(
        &mut self,
        records: &[Control],
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> HiveResult<FrameInfo> {
        let mut raw = self.recycler.take();
        for c in records {
            write_control(&mut raw, c);
        }
        let info = self.finish(&raw, records.len(), true, sequence, out);
        self.recycler.give(raw);
        info
    }

    fn finish(
        &mut self,
        raw: &[u8],
        count: usize,
        control: bool,
        sequence: u64,
        out: &mut Vec<u8>,
    ) -> HiveResult<FrameInfo> {
        let started = Instant::now();
        if raw.len() > self.config.max_raw {
            return Err(HiveError::LimitExceeded {
                limit: "frame raw size",
                value: raw.len() as u64,
                max: self.config.max_raw as u64,
            });
        }
        let mut encoded = self.recycler.take();
        let mut codec = Codec::None;
        if raw.len() >= self.config.threshold && self.config.codec != Codec::None {
            self.compress(raw, &mut encoded)?;
            let within = (encoded.len() as u64)
                .saturating_mul(u64::from(self.config.max_expansion))
                >= raw.len() as u64;
            if encoded.len() < raw.len() && within {
                codec = self.config.codec;
            }
        }
        let body: &[u8] = if codec == Codec::None { raw } else { &encoded };
        let header = FrameHeader {
            codec,
            control,
            count: u32::try_from(count).map_err(|_| too_many(count))?,
            raw_len: raw.len() as u32,
            encoded_len: body.len() as u32,
            dictionary_id: if codec == Codec::ZstdDictionary {
                self.config.dictionary.as_ref().map_or(0, Dictionary::id)
            } else {
                0
            },
            sequence,
            body_crc: crc32fast::hash(body),
        };
        out.reserve(HEADER_LEN + body.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(body);
        let info = FrameInfo {
            records: count,
            raw_len: raw.len(),
            frame_len: header.frame_len(),
            codec,
        };
        self.stats
            .frame(raw.len(), info.frame_len, started.elapsed());
        self.recycler.give(encoded);
        Ok(info)
    }

    fn compress(&mut self, raw: &[u8], encoded: &mut Vec<u8>) -> HiveResult<()> {
        encoded.clear();
        match self.config.codec {
            Codec::Zstd | Codec::ZstdDictionary => {
                let Some(zstd) = self.zstd.as_mut() else {
                    return Ok(());
                };
                encoded.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                zstd.compress_to_buffer(raw, encoded)?;
            }
            Codec::Gzip => {
                let level = flate2::Compression::new(self.config.level.clamp(0, 9) as u32);
                let mut gz = flate2::write::GzEncoder::new(std::mem::take(encoded), level);
                gz.write_all(raw)?;
                *encoded = gz.finish()?;
            }
            Codec::None => {}
        }
        Ok(())
    }
}

fn too_many(count: usize) -> HiveError {
    HiveError::LimitExceeded {
        limit: "records per frame",
        value: count as u64,
        max: u64::from(u32::MAX),
    }
}

impl fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a decoder accepts. A frame beyond any of these is rejected before
/// anything it asks for is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole frame, header included (8 MiB).
    pub max_frame: usize,
    /// Largest body after decompression: the decompression-bomb limit (16 MiB).
    pub max_decoded: usize,
    /// Most records in one frame (65,536): a small frame of empty records
    /// must not become millions of messages.
    pub max_records: u32,
    /// Most decoded bytes per encoded byte of a compressed body (64).
    /// Agent traffic compresses 3 to 10 times; hive's encoder sends a body
    /// uncompressed rather than past this ratio.
    pub max_expansion: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 8 << 20,
            max_decoded: 16 << 20,
            max_records: 65_536,
            max_expansion: 64,
        }
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFrame {
    /// The frame's sequence number.
    pub sequence: u64,
    /// Its records.
    pub body: FrameBody,
}

/// A frame's records.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameBody {
    /// Messages, in order.
    Messages(Vec<Message>),
    /// Control records (link management: the transports' business).
    #[doc(hidden)]
    Control(Vec<Control>),
}

/// Decodes frames from untrusted bytes: every limit is checked before any
/// allocation it governs, and every error is a typed [`HiveError`].
pub struct FrameDecoder {
    limits: Limits,
    zstd: zstd::bulk::Decompressor<'static>,
    dictionaries: HashMap<u32, zstd::bulk::Decompressor<'static>>,
    stats: WireStats,
}

impl FrameDecoder {
    /// A decoder with `limits`.
    pub fn new(limits: Limits) -> HiveResult<Self> {
        Ok(FrameDecoder {
            limits,
            zstd: zstd::bulk::Decompressor::new()?,
            dictionaries: HashMap::new(),
            stats: WireStats::new(Direction::Decode, Codec::None),
        })
    }

    /// Lets the decoder read frames compressed with `dictionary`.
    pub fn add_dictionary(&mut self, dictionary: &Dictionary) -> HiveResult<()> {
        let d = zstd::bulk::Decompressor::with_dictionary(dictionary.as_bytes())?;
        self.dictionaries.insert(dictionary.id(), d);
        Ok(())
    }

    /// Counters of what this decoder read and rejected.
    pub fn stats(&self) -> &WireStats {
        &self.stats
    }

    /// Checks the header at the start of `buf` and returns the whole frame's
    /// length, or `None` while fewer than 40 bytes are available.
    pub fn frame_len(&self, buf: &[u8]) -> HiveResult<Option<usize>> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = self.check_header(buf).map_err(|e| self.reject(e))?;
        Ok(Some(header.frame_len()))
    }

    fn check_header(&self, buf: &[u8]) -> HiveResult<FrameHeader> {
        let header = FrameHeader::parse(buf)?;
        let limit = |limit, value: u64, max: usize| HiveError::LimitExceeded {
            limit,
            value,
            max: max as u64,
        };
        if header.frame_len() > self.limits.max_frame {
            return Err(limit(
                "frame size",
                header.frame_len() as u64,
                self.limits.max_frame,
            ));
        }
        if header.raw_len as usize > self.limits.max_decoded {
            return Err(limit(
                "decoded size",
                u64::from(header.raw_len),
                self.limits.max_decoded,
            ));
        }
        if header.count > self.limits.max_records {
            return Err(limit(
                "records per frame",
                u64::from(header.count),
                self.limits.max_records as usize,
            ));
        }
        let most =
            u64::from(header.encoded_len).saturating_mul(u64::from(self.limits.max_expansion));
        if header.codec != Codec::None && u64::from(header.raw_len) > most {
            return Err(HiveError::LimitExceeded {
                limit: "decoded bytes per encoded byte",
                value: u64::from(header.raw_len) / u64::from(header.encoded_len.max(1)),
                max: u64::from(self.limits.max_expansion),
            });
        }
        Ok(header)
    }

    fn reject(&self, e: HiveError) -> HiveError {
        self.stats.rejected(&e);
        e
    }

    /// Decodes one whole frame (exactly `frame_len` bytes).
    pub fn decode(&mut self, frame: &[u8]) -> HiveResult<DecodedFrame> {
        self.decode_inner(frame).map_err(|e| self.reject(e))
    }

    fn decode_inner(&mut self, frame: &[u8]) -> HiveResult<DecodedFrame> {
        let started = Instant::now();
        let header = self.check_header(frame)?;
        let body = frame.get(HEADER_LEN..).unwrap_or(&[]);
        if body.len() != header.encoded_len as usize {
            return Err(FrameError::Truncated {
                needed: header.frame_len() as u64,
                available: frame.len() as u64,
            }
            .into());
        }
        let actual = crc32fast::hash(body);
        if actual != header.body_crc {
            return Err(FrameError::ChecksumMismatch {
                expected: header.body_crc,
                actual,
            }
            .into());
        }
        let raw = self.decompress(&header, body)?;
        let decoded = parse_body(&header, &raw)?;
        self.stats.frame(raw.len(), frame.len(), started.elapsed());
        Ok(DecodedFrame {
            sequence: header.sequence,
            body: decoded,
        })
    }

    /// The raw body, exactly `raw_len` bytes or an error.
    fn decompress(&mut self, header: &FrameHeader, body: &[u8]) -> HiveResult<Bytes> {
        let raw_len = header.raw_len as usize;
        let bad = |e: std::io::Error| HiveError::from(FrameError::Decompress(e.to_string()));
        let raw = match header.codec {
            Codec::None => return Ok(Bytes::copy_from_slice(body)),
            Codec::Zstd | Codec::ZstdDictionary => {
                single_zstd_frame(body)?;
                let ctx = if header.codec == Codec::Zstd {
                    &mut self.zstd
                } else {
                    self.dictionaries
                        .get_mut(&header.dictionary_id)
                        .ok_or(FrameError::UnknownDictionary(header.dictionary_id))?
                };
                // Capacity is the bound: zstd fails rather than write past it.
                let mut out = Vec::with_capacity(raw_len);
                ctx.decompress_to_buffer(body, &mut out).map_err(bad)?;
                out
            }
            Codec::Gzip => {
                let mut out = Vec::with_capacity(raw_len);
                let limit = raw_len as u64 + 1;
                // The bufread decoder consumes exactly one member, so what
                // it leaves of `body` is trailing data.
                let mut gz = flate2::bufread::GzDecoder::new(body);
                (&mut gz).take(limit).read_to_end(&mut out).map_err(bad)?;
                if !gz.into_inner().is_empty() {
                    return Err(FrameError::Inconsistent(
                        "bytes after the gzip member (one member, nothing after it)",
                    )
                    .into());
                }
                out
            }
        };
        if raw.len() != raw_len {
            return Err(
                FrameError::Inconsistent("decompressed size differs from the raw length").into(),
            );
        }
        Ok(Bytes::from(raw))
    }
}

/// The magic of a regular zstd frame (RFC 8878), little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A zstd body is exactly one regular frame: no skippable frame, nothing
/// concatenated after it.
fn single_zstd_frame(body: &[u8]) -> HiveResult<()> {
    let one = |why| HiveError::from(FrameError::Inconsistent(why));
    if body.get(..4) != Some(&ZSTD_MAGIC[..]) {
        return Err(one("a zstd body starts with a regular zstd frame"));
    }
    match zstd::zstd_safe::find_frame_compressed_size(body) {
        Ok(n) if n == body.len() => Ok(()),
        Ok(_) => Err(one(
            "bytes after the zstd frame (one frame, nothing after it)",
        )),
        Err(_) => Err(one("the zstd frame is malformed")),
    }
}

fn parse_body(header: &FrameHeader, raw: &Bytes) -> HiveResult<FrameBody> {
    let mut r = Reader::new(raw);
    let body = if header.control {
        let mut records = Vec::with_capacity(header.count as usize);
        for _ in 0..header.count {
            records.push(read_control(&mut r)?);
        }
        FrameBody::Control(records)
    } else {
        let mut messages = Vec::with_capacity(header.count as usize);
        for _ in 0..header.count {
            messages.push(read_message(&mut r, raw)?);
        }
        FrameBody::Messages(messages)
    };
    if r.remaining() != 0 {
        return Err(FrameError::Inconsistent("bytes left after the last record").into());
    }
    Ok(body)
}

impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("limits", &self.limits)
            .field(
                "dictionaries",
                &self.dictionaries.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}
