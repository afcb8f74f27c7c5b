//! Frames written by hive, read by the spec alone: this decoder follows
//! `docs/wire-format.md` with the plain zstd and flate2 decoders and shares
//! no decoding code with hive.
#![cfg(feature = "wire")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::Read;

use hive_messaging::wire::{Dictionary, EncoderConfig, FrameEncoder};
use hive_types::{AgentId, Message, MessageId, MessageKind, Priority};

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[derive(Debug, PartialEq)]
struct Record {
    id: [u8; 16],
    sender: [u8; 16],
    to_broadcast: bool,
    recipient: [u8; 16],
    kind: u32,
    priority: u8,
    created_us: u64,
    correlation: Option<[u8; 16]>,
    ttl_us: Option<u64>,
    payload: Vec<u8>,
}

/// Decodes one frame following docs/wire-format.md, step by step.
fn decode_by_the_spec(frame: &[u8], dictionary: Option<&[u8]>) -> (u64, Vec<Record>) {
    assert_eq!(&frame[0..4], b"HIVE");
    assert_eq!(frame[4], 1, "version");
    let codec = frame[5];
    assert_eq!(frame[6] & !1, 0);
    assert_eq!(frame[7], 0);
    let count = le32(frame, 8) as usize;
    let raw_len = le32(frame, 12) as usize;
    let encoded_len = le32(frame, 16) as usize;
    let dict_id = le32(frame, 20);
    let sequence = le64(frame, 24);
    assert_eq!(
        crc32fast::hash(&frame[..36]),
        le32(frame, 36),
        "header checksum"
    );
    let body = &frame[40..40 + encoded_len];
    assert_eq!(frame.len(), 40 + encoded_len);
    assert_eq!(crc32fast::hash(body), le32(frame, 32), "body checksum");
    let raw = match codec {
        0 => body.to_vec(),
        1 => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        2 => zstd::decode_all(body).unwrap(),
        3 => {
            let dict = dictionary.expect("a dictionary for codec 3");
            assert_eq!(u32::from_le_bytes(dict[4..8].try_into().unwrap()), dict_id);
            let mut d = zstd::stream::read::Decoder::with_dictionary(body, dict).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            out
        }
        other => panic!("codec {other}"),
    };
    assert_eq!(raw.len(), raw_len);
    let mut records = Vec::new();
    let mut at = 0;
    for _ in 0..count {
        let r = &raw[at..];
        let flags = r[54];
        let len = le32(r, 87) as usize;
        assert_eq!(le32(r, 91), 0, "reserved");
        records.push(Record {
            id: r[0..16].try_into().unwrap(),
            sender: r[16..32].try_into().unwrap(),
            to_broadcast: r[32] == 1,
            recipient: r[33..49].try_into().unwrap(),
            kind: le32(r, 49),
            priority: r[53],
            created_us: le64(r, 55),
            correlation: (flags & 1 != 0).then(|| r[63..79].try_into().unwrap()),
            ttl_us: (flags & 2 != 0).then(|| le64(r, 79)),
            payload: r[95..95 + len].to_vec(),
        });
        at += 95 + len;
    }
    assert_eq!(at, raw.len(), "records fill the body exactly");
    (sequence, records)
}

fn expected(m: &Message) -> Record {
    Record {
        id: *m.id.as_bytes(),
        sender: *m.sender.as_bytes(),
        to_broadcast: m.recipient.agent().is_none(),
        recipient: m.recipient.agent().map_or([0; 16], |a| *a.as_bytes()),
        kind: m.kind.code(),
        priority: m.priority as u8,
        created_us: m.created_at.as_micros(),
        correlation: m.correlation_id.map(|c| *c.as_bytes()),
        ttl_us: m.ttl.map(|t| t.as_micros() as u64),
        payload: m.payload.to_vec(),
    }
}

fn batch() -> Vec<Message> {
    let (a, b) = (AgentId::random(), AgentId::random());
    (0..60u32)
        .map(|i| {
            let mut m = Message::builder(a, b)
                .kind(if i % 3 == 0 {
                    MessageKind::Custom(7)
                } else {
                    MessageKind::TaskProgress
                })
                .priority(Priority::ALL[(i % 4) as usize])
                .payload(format!(
                    "{{\"step\":{i},\"text\":\"the planner agent revised shard {i} twice\"}}"
                ))
                .build();
            if i % 2 == 0 {
                m.correlation_id = Some(MessageId::random());
                m.ttl = Some(std::time::Duration::from_millis(u64::from(i) * 10));
            }
            m
        })
        .collect()
}

#[test]
fn frames_decode_with_plain_zstd_gzip_and_the_spec_alone() {
    let batch = batch();
    let samples: Vec<Message> = (0..10).flat_map(|_| batch.clone()).collect();
    let dict = Dictionary::train(&samples, 8 * 1024).unwrap();
    for (config, dict_bytes) in [
        (EncoderConfig::uncompressed(), None),
        (EncoderConfig::gzip(), None),
        (EncoderConfig::default(), None),
        (
            EncoderConfig::with_dictionary(dict.clone()),
            Some(dict.as_bytes()),
        ),
    ] {
        let mut frame = Vec::new();
        FrameEncoder::new(config)
            .unwrap()
            .encode_messages(&batch, 42, &mut frame)
            .unwrap();
        let (sequence, records) = decode_by_the_spec(&frame, dict_bytes);
        assert_eq!(sequence, 42);
        assert_eq!(records, batch.iter().map(expected).collect::<Vec<_>>());
    }
}
