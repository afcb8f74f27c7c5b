//! The test vectors of `docs/wire-format.md`, read from the page itself:
//! each decodes to the values the page lists.
#![cfg(feature = "wire")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hive_messaging::wire::{Control, FrameBody, FrameDecoder, Limits};
use hive_types::{AgentId, MessageId, MessageKind, Priority, Recipient, Timestamp};

const SPEC: &str = include_str!("../../../docs/wire-format.md");
const PAYLOAD: &[u8] =
    br#"{"task":"summarise","shard":7,"notes":"the plan holds, the plan holds, the plan holds"}"#;

/// Every ```hex block of the page, in order, as bytes.
fn vectors() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut lines = SPEC.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```hex" {
            continue;
        }
        let hex: String = lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        out.push(bytes);
    }
    out
}

fn messages(frame: &[u8]) -> Vec<hive_types::Message> {
    let decoded = FrameDecoder::new(Limits::default())
        .unwrap()
        .decode(frame)
        .unwrap();
    assert_eq!(decoded.sequence, 7);
    match decoded.body {
        FrameBody::Messages(m) => m,
        other => panic!("expected messages, got {other:?}"),
    }
}

#[test]
fn the_pages_vectors_decode_to_the_listed_values() {
    let v = vectors();
    assert_eq!(v.len(), 4, "four vectors on the page");
    for (frame, (codec, count)) in v.iter().zip([(0u8, 1usize), (1, 12), (2, 12)]) {
        assert_eq!(frame[5], codec);
        let got = messages(frame);
        assert_eq!(got.len(), count);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(m.id, MessageId::from_u128(0x1000 + i as u128));
            assert_eq!(m.sender, AgentId::from_u128(0xA));
            assert_eq!(m.recipient, Recipient::Agent(AgentId::from_u128(0xB)));
            assert_eq!(m.kind, MessageKind::Request);
            assert_eq!(m.priority, Priority::High);
            assert_eq!(
                m.created_at,
                Timestamp::from_micros(1_700_000_000_000_000 + i as u64)
            );
            assert_eq!(m.correlation_id, None);
            assert_eq!(m.ttl, Some(Duration::from_secs(5)));
            assert_eq!(m.payload.as_ref(), PAYLOAD);
        }
    }
    let control = FrameDecoder::new(Limits::default())
        .unwrap()
        .decode(&v[3])
        .unwrap();
    assert_eq!(
        control.body,
        FrameBody::Control(vec![
            Control::Hello { version: 1 },
            Control::Hosts(AgentId::from_u128(0xB)),
            Control::Ack(41),
        ])
    );
}

#[test]
fn the_vectors_checksums_hold_by_the_page_alone() {
    for frame in vectors() {
        let le32 = |at: usize| u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
        assert_eq!(crc32fast::hash(&frame[..36]), le32(36), "header checksum");
        let body = &frame[40..];
        assert_eq!(body.len() as u32, le32(16), "encoded length");
        assert_eq!(crc32fast::hash(body), le32(32), "body checksum");
        let raw_len = le32(12) as usize;
        let raw = match frame[5] {
            0 => body.to_vec(),
            1 => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out)
                    .unwrap();
                out
            }
            2 => zstd::bulk::decompress(body, raw_len).unwrap(),
            other => panic!("codec {other}"),
        };
        assert_eq!(raw.len(), raw_len, "raw length");
    }
}
