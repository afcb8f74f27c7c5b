//! The wire format: round trips, corruption, truncation, limits, bombs.
#![cfg(feature = "wire")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::Write;
use std::time::Duration;

use hive_messaging::wire::{
    Codec, Control, Dictionary, EncoderConfig, FrameBody, FrameDecoder, FrameEncoder, FrameHeader,
    Limits,
};
use hive_types::{
    AgentId, FrameError, HiveError, Message, MessageId, MessageKind, Priority, Recipient, Timestamp,
};
use proptest::prelude::*;

fn text_payload(seed: u64, len: usize) -> Vec<u8> {
    let words = [
        "agent", "task", "shard", "plan", "result", "retry", "the", "of", "summary", "status",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = String::from("{\"note\":\"");
    while s.len() < len {
        s.push_str(words[rng.usize(..words.len())]);
        s.push(' ');
    }
    s.push_str("\"}");
    s.into_bytes()
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u128>(),
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        prop_oneof![
            (0u32..=13).prop_filter_map("kind", MessageKind::from_code),
            any::<u16>().prop_map(MessageKind::Custom)
        ],
        proptest::sample::select(Priority::ALL.to_vec()),
        any::<u64>(),
        proptest::option::of(any::<u128>()),
        proptest::option::of(0u64..10_000_000_000),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (any::<u64>(), 0usize..3000).prop_map(|(s, n)| text_payload(s, n)),
        ],
        proptest::option::of((any::<u128>(), any::<u64>(), any::<u8>())),
    )
        .prop_map(
            |(id, from, to, kind, priority, at, corr, ttl, payload, trace)| Message {
                id: MessageId::from_u128(id),
                sender: AgentId::from_u128(from),
                recipient: to.map_or(Recipient::Broadcast, |t| {
                    Recipient::Agent(AgentId::from_u128(t))
                }),
                kind,
                priority,
                created_at: Timestamp::from_micros(at),
                correlation_id: corr.map(MessageId::from_u128),
                ttl: ttl.map(Duration::from_micros),
                payload: payload.into(),
                trace: trace.map(|(t, s, flags)| {
                    Box::new(hive_types::TraceContext {
                        trace_id: t.to_le_bytes(),
                        span_id: s.to_le_bytes(),
                        flags,
                    })
                }),
                receipt: None,
            },
        )
}

fn sample_dictionary() -> Dictionary {
    let (a, b) = (AgentId::random(), AgentId::random());
    let samples: Vec<Message> = (0..400)
        .map(|i| Message::new(a, b, text_payload(i, 200 + (i as usize % 7) * 100)))
        .collect();
    Dictionary::train(&samples, 16 * 1024).unwrap()
}

fn configs(dict: &Dictionary) -> Vec<EncoderConfig> {
    vec![
        EncoderConfig::uncompressed(),
        EncoderConfig::gzip(),
        EncoderConfig::default(),
        EncoderConfig::with_dictionary(dict.clone()),
        EncoderConfig {
            threshold: 0,
            ..EncoderConfig::default()
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_batches_round_trip_through_every_codec(batch in proptest::collection::vec(message(), 0..40), seq in any::<u64>()) {
        let dict = sample_dictionary_cached();
        let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
        decoder.add_dictionary(&dict).unwrap();
        for config in configs(&dict) {
            let mut encoder = FrameEncoder::new(config).unwrap();
            let mut frame = Vec::new();
            let info = encoder.encode_messages(&batch, seq, &mut frame).unwrap();
            prop_assert_eq!(info.frame_len, frame.len());
            let decoded = decoder.decode(&frame).unwrap();
            prop_assert_eq!(decoded.sequence, seq);
            prop_assert_eq!(decoded.body, FrameBody::Messages(batch.clone()));
        }
    }
}

fn sample_dictionary_cached() -> Dictionary {
    static DICT: std::sync::OnceLock<Dictionary> = std::sync::OnceLock::new();
    DICT.get_or_init(sample_dictionary).clone()
}

fn some_frame(codec: EncoderConfig) -> Vec<u8> {
    let (a, b) = (AgentId::random(), AgentId::random());
    let batch: Vec<Message> = (0..20)
        .map(|i| Message::new(a, b, text_payload(i, 300)))
        .collect();
    let mut frame = Vec::new();
    FrameEncoder::new(codec)
        .unwrap()
        .encode_messages(&batch, 9, &mut frame)
        .unwrap();
    frame
}

#[test]
fn control_frames_round_trip() {
    let records = vec![
        Control::Hello { version: 1 },
        Control::Hosts(AgentId::random()),
        Control::Leaves(AgentId::random()),
        Control::Ack(u64::MAX - 3),
    ];
    let mut frame = Vec::new();
    FrameEncoder::new(EncoderConfig::default())
        .unwrap()
        .encode_control(&records, 4, &mut frame)
        .unwrap();
    let decoded = FrameDecoder::new(Limits::default())
        .unwrap()
        .decode(&frame)
        .unwrap();
    assert_eq!(decoded.body, FrameBody::Control(records));
}

#[test]
fn truncation_at_every_offset_is_a_typed_error() {
    for config in [
        EncoderConfig::uncompressed(),
        EncoderConfig::default(),
        EncoderConfig::gzip(),
    ] {
        let frame = some_frame(config);
        let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
        for cut in 0..frame.len() {
            match decoder.decode(&frame[..cut]) {
                Err(HiveError::InvalidFrame(_)) => {}
                other => panic!("cut at {cut} of {}: {other:?}", frame.len()),
            }
            if cut < 40 {
                assert_eq!(decoder.frame_len(&frame[..cut]).unwrap(), None);
            } else {
                assert_eq!(decoder.frame_len(&frame[..cut]).unwrap(), Some(frame.len()));
            }
        }
        assert!(decoder.decode(&frame).is_ok());
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    let frame = some_frame(EncoderConfig::default());
    let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
    let original = decoder.decode(&frame).unwrap();
    for byte in 0..frame.len() {
        for bit in 0..8 {
            let mut bad = frame.clone();
            bad[byte] ^= 1 << bit;
            match decoder.decode(&bad) {
                Err(_) => {}
                Ok(d) => panic!(
                    "flip at byte {byte} bit {bit} went unnoticed (same data: {})",
                    d == original
                ),
            }
        }
    }
    assert!(decoder.stats().rejected_frames() >= (frame.len() * 8) as u64);
}

/// A header claiming `raw_len`, `count` and `encoded_len`, with a correct
/// header checksum, in front of `body`.
fn forged(codec: Codec, count: u32, raw_len: u32, body: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        codec,
        control: false,
        count,
        raw_len,
        encoded_len: body.len() as u32,
        dictionary_id: 0,
        sequence: 1,
        body_crc: crc32fast::hash(body),
    };
    let mut f = header.to_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn lying_lengths_are_refused_before_allocating() {
    let decoder = FrameDecoder::new(Limits::default()).unwrap();
    let mut header = forged(Codec::Zstd, 1, 1000, b"x").to_vec();
    // Claim a 4 GiB body: refused from the header alone.
    let claim = FrameHeader {
        encoded_len: u32::MAX,
        ..FrameHeader::parse(&header).unwrap()
    };
    header[..40].copy_from_slice(&claim.to_bytes());
    let err = decoder.frame_len(&header).unwrap_err();
    assert!(
        matches!(
            err,
            HiveError::LimitExceeded {
                limit: "frame size",
                ..
            }
        ),
        "{err}"
    );
    // Claim 4 GiB decoded.
    let f = forged(Codec::Zstd, 1, u32::MAX, b"tiny");
    assert!(matches!(
        decoder.frame_len(&f),
        Err(HiveError::LimitExceeded {
            limit: "decoded size",
            ..
        })
    ));
    // More records than the raw length can hold.
    let f = forged(Codec::None, 1000, 10, &[0u8; 10]);
    assert!(matches!(
        decoder.frame_len(&f),
        Err(HiveError::InvalidFrame(FrameError::Inconsistent(_)))
    ));
}

#[test]
fn a_zstd_bomb_stops_at_the_declared_size() {
    // 1 GiB of zeros squeezed into a few KiB.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
    // Declaring 1 GiB is refused by the limit.
    let f = forged(Codec::Zstd, 1, 1 << 30, &bomb);
    assert!(matches!(
        decoder.decode(&f),
        Err(HiveError::LimitExceeded { .. })
    ));
    // Declaring 1 MiB: decompression stops at 1 MiB and fails.
    let f = forged(Codec::Zstd, 1, 1 << 20, &bomb);
    let started = std::time::Instant::now();
    assert!(matches!(
        decoder.decode(&f),
        Err(HiveError::InvalidFrame(FrameError::Decompress(_)))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not inflate the whole bomb"
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_declared_size() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&chunk).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
    let f = forged(Codec::Gzip, 1, 1 << 20, &bomb);
    assert!(matches!(
        decoder.decode(&f),
        Err(HiveError::InvalidFrame(FrameError::Inconsistent(_)))
    ));
}

#[test]
fn dictionaries_are_named_by_id_and_required() {
    let (a, b) = (AgentId::random(), AgentId::random());
    let dict = sample_dictionary();
    let batch: Vec<Message> = (0..30)
        .map(|i| Message::new(a, b, text_payload(1000 + i, 400)))
        .collect();
    let mut frame = Vec::new();
    let info = FrameEncoder::new(EncoderConfig::with_dictionary(dict.clone()))
        .unwrap()
        .encode_messages(&batch, 1, &mut frame)
        .unwrap();
    assert_eq!(info.codec, Codec::ZstdDictionary);
    let mut plain = FrameDecoder::new(Limits::default()).unwrap();
    assert!(
        matches!(plain.decode(&frame), Err(HiveError::InvalidFrame(FrameError::UnknownDictionary(id))) if id == dict.id())
    );
    let mut other = Vec::new();
    FrameEncoder::new(EncoderConfig::default())
        .unwrap()
        .encode_messages(&batch, 2, &mut other)
        .unwrap();
    let mut both = FrameDecoder::new(Limits::default()).unwrap();
    both.add_dictionary(&dict).unwrap();
    assert_eq!(
        both.decode(&frame).unwrap().body,
        FrameBody::Messages(batch.clone())
    );
    assert_eq!(
        both.decode(&other).unwrap().body,
        FrameBody::Messages(batch)
    );
}

#[test]
fn small_batches_stay_uncompressed_and_compression_pays_on_text() {
    let (a, b) = (AgentId::random(), AgentId::random());
    let one = vec![Message::new(a, b, "tiny")];
    let mut frame = Vec::new();
    let mut encoder = FrameEncoder::new(EncoderConfig::default()).unwrap();
    assert_eq!(
        encoder.encode_messages(&one, 1, &mut frame).unwrap().codec,
        Codec::None
    );
    let many: Vec<Message> = (0..50)
        .map(|i| Message::new(a, b, text_payload(i, 1000)))
        .collect();
    frame.clear();
    let info = encoder.encode_messages(&many, 2, &mut frame).unwrap();
    assert_eq!(info.codec, Codec::Zstd);
    assert!(
        info.raw_len as f64 / info.frame_len as f64 > 2.0,
        "ratio {}",
        info.raw_len as f64 / info.frame_len as f64
    );
    assert!(encoder.stats().ratio() > 1.0);
}

#[test]
fn the_level_changes_between_frames_and_both_decode() {
    let (a, b) = (AgentId::random(), AgentId::random());
    let batch: Vec<Message> = (0..200)
        .map(|i| Message::new(a, b, text_payload(i, 600)))
        .collect();
    let mut encoder = FrameEncoder::new(EncoderConfig::default()).unwrap();
    let (mut small, mut fast) = (Vec::new(), Vec::new());
    encoder.set_level(19).unwrap();
    encoder.encode_messages(&batch, 1, &mut small).unwrap();
    encoder.set_level(-7).unwrap();
    assert_eq!(encoder.level(), -7);
    encoder.encode_messages(&batch, 2, &mut fast).unwrap();
    assert!(
        fast.len() > small.len(),
        "{} <= {}",
        fast.len(),
        small.len()
    );
    let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
    for frame in [&small, &fast] {
        let FrameBody::Messages(got) = decoder.decode(frame).unwrap().body else {
            panic!("messages");
        };
        assert_eq!(got, batch);
    }
    let mut gzip = FrameEncoder::new(EncoderConfig::gzip()).unwrap();
    assert!(gzip.set_level(-1).is_err());
    assert_eq!(gzip.level(), 6);
}
