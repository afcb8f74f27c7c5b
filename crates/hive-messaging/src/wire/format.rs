//! The byte layout of frames and records (`docs/wire-format.md`).
//!
//! Everything here reads through bounds-checked slices: a short or lying
//! input yields a [`FrameError`], never a panic or an out-of-bounds read.

use std::time::Duration;

use bytes::Bytes;
use hive_types::{
    AgentId, FrameError, Message, MessageId, MessageKind, Priority, Recipient, Timestamp,
    TraceContext, ENVELOPE_BYTES,
};

/// The first four bytes of every frame.
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub const MAGIC: [u8; 4] = *b"HIVE";
/// The wire version this build writes and reads.
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub const VERSION: u8 = 1;
/// Bytes of a frame header.
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub const HEADER_LEN: usize = 40;
/// A message record's fields before the payload, in order: id, sender,
/// recipient tag, recipient, kind, priority, flags, created_at,
/// correlation id, ttl, payload length, reserved.
const RECORD_FIELDS: [usize; 12] = [16, 16, 1, 16, 4, 1, 1, 8, 16, 8, 4, 4];

const fn total(fields: &[usize]) -> usize {
    let (mut sum, mut rest) = (0, fields);
    while let [first, tail @ ..] = rest {
        sum += *first;
        rest = tail;
    }
    sum
}

// `ENVELOPE_BYTES` (a message record before its payload) is pinned to the layout `write_message` writes.
const _: () = assert!(total(&RECORD_FIELDS) == ENVELOPE_BYTES);

/// Bytes of a control record.
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub const CONTROL_RECORD: usize = 17;

const FLAG_CONTROL: u8 = 1;

/// How a frame's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is.
    None = 0,
    /// gzip (flate2).
    Gzip = 1,
    /// zstd.
    Zstd = 2,
    /// zstd with a trained dictionary.
    ZstdDictionary = 3,
}

impl Codec {
    fn from_byte(b: u8) -> Result<Codec, FrameError> {
        match b {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Zstd),
            3 => Ok(Codec::ZstdDictionary),
            other => Err(FrameError::UnknownCodec(other)),
        }
    }

    /// Lower-case name, as used in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::ZstdDictionary => "zstd_dict",
        }
    }
}

/// A parsed (and checked) frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub struct FrameHeader {
    /// Body encoding.
    pub codec: Codec,
    /// Whether the body holds control records.
    pub control: bool,
    /// Records in the body.
    pub count: u32,
    /// Body length before encoding.
    pub raw_len: u32,
    /// Body bytes after the header.
    pub encoded_len: u32,
    /// zstd dictionary id (codec 3), else 0.
    pub dictionary_id: u32,
    /// Sequence number of the frame on its link.
    pub sequence: u64,
    /// CRC-32 of the encoded body.
    pub body_crc: u32,
}

impl FrameHeader {
    /// Whole frame length: header plus encoded body.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.encoded_len as usize
    }

    /// The 40 header bytes, header checksum included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let mut w = Writer {
            buf: &mut h,
            pos: 0,
        };
        w.put(&MAGIC);
        w.put(&[
            VERSION,
            self.codec as u8,
            if self.control { FLAG_CONTROL } else { 0 },
            0,
        ]);
        w.put(&self.count.to_le_bytes());
        w.put(&self.raw_len.to_le_bytes());
        w.put(&self.encoded_len.to_le_bytes());
        w.put(&self.dictionary_id.to_le_bytes());
        w.put(&self.sequence.to_le_bytes());
        w.put(&self.body_crc.to_le_bytes());
        let crc = crc32fast::hash(h.get(..36).unwrap_or(&[]));
        if let Some(tail) = h.get_mut(36..40) {
            tail.copy_from_slice(&crc.to_le_bytes());
        }
        h
    }

    /// Parses and checks the first 40 bytes of `bytes`: magic, version,
    /// reserved bits, header checksum, codec, and length consistency.
    pub fn parse(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
        let mut r = Reader::new(bytes);
        let magic: [u8; 4] = r.array()?;
        if magic != MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        let [version, codec, flags, reserved] = r.array::<4>()?;
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let header = FrameHeader {
            codec: Codec::None,
            control: flags & FLAG_CONTROL != 0,
            count: r.u32()?,
            raw_len: r.u32()?,
            encoded_len: r.u32()?,
            dictionary_id: r.u32()?,
            sequence: r.u64()?,
            body_crc: r.u32()?,
        };
        let expected = r.u32()?;
        let actual = crc32fast::hash(bytes.get(..36).unwrap_or(&[]));
        if expected != actual {
            return Err(FrameError::ChecksumMismatch { expected, actual });
        }
        if flags & !FLAG_CONTROL != 0 || reserved != 0 {
            return Err(FrameError::ReservedFlags(flags | reserved));
        }
        let codec = Codec::from_byte(codec)?;
        if codec == Codec::None && header.raw_len != header.encoded_len {
            return Err(FrameError::Inconsistent(
                "uncompressed body with raw length != encoded length",
            ));
        }
        if (codec == Codec::ZstdDictionary) != (header.dictionary_id != 0) {
            return Err(FrameError::Inconsistent(
                "dictionary id set without codec 3, or missing for it",
            ));
        }
        let smallest = if header.control {
            CONTROL_RECORD
        } else {
            ENVELOPE_BYTES
        } as u64;
        if u64::from(header.count) * smallest > u64::from(header.raw_len) {
            return Err(FrameError::Inconsistent(
                "more records than the raw length can hold",
            ));
        }
        Ok(FrameHeader { codec, ..header })
    }
}

/// A control record (link management between two hive processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[doc(hidden)] // the wire internals: for the transports, tests and fuzzing
pub enum Control {
    /// The sender now hosts this agent: route messages for it here.
    Hosts(AgentId),
    /// The sender no longer hosts this agent.
    Leaves(AgentId),
    /// The sender delivered every frame up to this sequence number.
    Ack(u64),
    /// The highest wire version the sender reads.
    Hello {
        /// Version.
        version: u8,
    },
    /// Nothing to say: keeps an idle link from timing out.
    KeepAlive,
    /// The sender's random challenge for the token handshake.
    Nonce([u8; 16]),
    /// The sender's answer to the peer's challenge: a MAC of both nonces
    /// keyed by the shared token.
    Proof([u8; 16]),
}

/// Appends a message record to `out`.
pub(crate) fn write_message(out: &mut Vec<u8>, m: &Message) {
    out.reserve(ENVELOPE_BYTES + m.payload.len());
    out.extend_from_slice(m.id.as_bytes());
    out.extend_from_slice(m.sender.as_bytes());
    match m.recipient {
        Recipient::Agent(a) => {
            out.push(0);
            out.extend_from_slice(a.as_bytes());
        }
        Recipient::Broadcast => {
            out.push(1);
            out.extend_from_slice(&[0u8; 16]);
        }
    }
    out.extend_from_slice(&m.kind.code().to_le_bytes());
    out.push(m.priority as u8);
    let flags = u8::from(m.correlation_id.is_some())
        | (u8::from(m.ttl.is_some()) << 1)
        | (u8::from(m.trace.is_some()) << 2);
    out.push(flags);
    out.extend_from_slice(&m.created_at.as_micros().to_le_bytes());
    out.extend_from_slice(
        m.correlation_id
            .map_or([0u8; 16], |c| *c.as_bytes())
            .as_slice(),
    );
    let ttl = m
        .ttl
        .map_or(0, |t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
    out.extend_from_slice(&ttl.to_le_bytes());
    let len = u32::try_from(m.payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    if let Some(trace) = &m.trace {
        out.extend_from_slice(&trace.trace_id);
        out.extend_from_slice(&trace.span_id);
        out.push(trace.flags);
    }
    out.extend_from_slice(&m.payload);
}

/// Bytes a message takes on the wire before compression.
pub fn message_len(m: &Message) -> usize {
    m.accounted_len()
}

/// Appends a control record to `out`.
pub(crate) fn write_control(out: &mut Vec<u8>, c: &Control) {
    let mut arg = [0u8; 16];
    let op = match c {
        Control::Hosts(a) => {
            arg = *a.as_bytes();
            1
        }
        Control::Leaves(a) => {
            arg = *a.as_bytes();
            2
        }
        Control::Ack(seq) => {
            if let Some(head) = arg.get_mut(..8) {
                head.copy_from_slice(&seq.to_le_bytes());
            }
            3
        }
        Control::Hello { version } => {
            arg[0] = *version;
            4
        }
        Control::KeepAlive => 5,
        Control::Nonce(n) => {
            arg = *n;
            6
        }
        Control::Proof(p) => {
            arg = *p;
            7
        }
    };
    out.push(op);
    out.extend_from_slice(&arg);
}

/// Reads a message record at the reader's position.
pub(crate) fn read_message(r: &mut Reader<'_>, body: &Bytes) -> Result<Message, FrameError> {
    let id = MessageId::from_bytes(r.array()?);
    let sender = AgentId::from_bytes(r.array()?);
    let recipient_kind = r.u8()?;
    let recipient_id = AgentId::from_bytes(r.array()?);
    let recipient = match recipient_kind {
        0 => Recipient::Agent(recipient_id),
        1 => Recipient::Broadcast,
        _ => return Err(FrameError::Inconsistent("unknown recipient kind")),
    };
    let kind =
        MessageKind::from_code(r.u32()?).ok_or(FrameError::Inconsistent("unknown message kind"))?;
    let priority = Priority::from_index(usize::from(r.u8()?))
        .ok_or(FrameError::Inconsistent("unknown priority"))?;
    let flags = r.u8()?;
    if flags & !0b111 != 0 {
        return Err(FrameError::ReservedFlags(flags));
    }
    if recipient == Recipient::Broadcast && recipient_id != AgentId::nil() {
        return Err(FrameError::Inconsistent(
            "a broadcast's recipient id must be zero",
        ));
    }
    let created_at = Timestamp::from_micros(r.u64()?);
    let correlation: [u8; 16] = r.array()?;
    if flags & 1 == 0 && correlation != [0; 16] {
        return Err(FrameError::Inconsistent(
            "correlation bytes must be zero without flag bit 0",
        ));
    }
    let correlation = MessageId::from_bytes(correlation);
    let ttl = r.u64()?;
    if flags & 2 == 0 && ttl != 0 {
        return Err(FrameError::Inconsistent(
            "ttl bytes must be zero without flag bit 1",
        ));
    }
    let len = r.u32()? as usize;
    if r.u32()? != 0 {
        return Err(FrameError::Inconsistent(
            "reserved record bytes are not zero",
        ));
    }
    let trace = match flags & 4 {
        0 => None,
        _ => Some(Box::new(TraceContext {
            trace_id: r.array()?,
            span_id: r.array()?,
            flags: r.u8()?,
        })),
    };
    let start = r.pos;
    r.skip(len)?;
    Ok(Message {
        id,
        sender,
        recipient,
        kind,
        priority,
        created_at,
        correlation_id: (flags & 1 != 0).then_some(correlation),
        ttl: (flags & 2 != 0).then(|| Duration::from_micros(ttl)),
        payload: body.slice(start..start + len),
        trace,
        receipt: None,
    })
}

/// Reads a control record at the reader's position. Argument bytes an op
/// does not use must be zero.
pub(crate) fn read_control(r: &mut Reader<'_>) -> Result<Control, FrameError> {
    let op = r.u8()?;
    let arg: [u8; 16] = r.array()?;
    let (head, tail) = arg.split_at(8);
    let zero_from = |at: usize| arg.get(at..).is_some_and(|t| t.iter().all(|b| *b == 0));
    let unused_not_zero = || FrameError::Inconsistent("unused control argument bytes must be zero");
    match op {
        1 => Ok(Control::Hosts(AgentId::from_bytes(arg))),
        2 => Ok(Control::Leaves(AgentId::from_bytes(arg))),
        3 if tail.iter().all(|b| *b == 0) => {
            let seq: [u8; 8] = head.try_into().map_err(|_| unused_not_zero())?;
            Ok(Control::Ack(u64::from_le_bytes(seq)))
        }
        4 if zero_from(1) => Ok(Control::Hello { version: arg[0] }),
        5 if zero_from(0) => Ok(Control::KeepAlive),
        6 => Ok(Control::Nonce(arg)),
        7 => Ok(Control::Proof(arg)),
        3..=5 => Err(unused_not_zero()),
        _ => Err(FrameError::Inconsistent("unknown control op")),
    }
}

/// A bounds-checked cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(FrameError::Inconsistent("length overflow"))?;
        let slice = self.buf.get(self.pos..end).ok_or(FrameError::Truncated {
            needed: end as u64,
            available: self.buf.len() as u64,
        })?;
        self.pos = end;
        Ok(slice)
    }

    fn skip(&mut self, n: usize) -> Result<(), FrameError> {
        self.take(n).map(drop)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let s = self.take(N)?;
        s.try_into()
            .map_err(|_| FrameError::Inconsistent("short field"))
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.pos += bytes.len();
    }
}
