//! Strict decoding: what `docs/wire-format.md` says must be zero, or
//! single, is rejected when it is not; the spec's test vectors (docs/wire-format.md) decode.
#![cfg(feature = "wire")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;

use hive_messaging::wire::{Control, FrameBody, FrameDecoder, Limits};
use hive_types::{FrameError, HiveError};

/// A whole frame around `body` (codec, control flag, count, raw length).
fn frame(codec: u8, control: bool, count: u32, raw_len: u32, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(40 + body.len());
    h.extend_from_slice(b"HIVE");
    h.extend_from_slice(&[1, codec, u8::from(control), 0]);
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&raw_len.to_le_bytes());
    h.extend_from_slice(&(body.len() as u32).to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&9u64.to_le_bytes());
    h.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    let crc = crc32fast::hash(&h[..36]);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(body);
    h
}

/// A canonical message record, with a hook to spoil it.
fn record(spoil: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&[1u8; 16]); // id
    r.extend_from_slice(&[2u8; 16]); // sender
    r.push(0); // one agent
    r.extend_from_slice(&[3u8; 16]); // recipient
    r.extend_from_slice(&0u32.to_le_bytes()); // data
    r.push(1); // normal
    r.push(0); // flags
    r.extend_from_slice(&1_700_000_000_000_000u64.to_le_bytes());
    r.extend_from_slice(&[0u8; 16]); // correlation
    r.extend_from_slice(&0u64.to_le_bytes()); // ttl
    r.extend_from_slice(&2u32.to_le_bytes()); // payload length
    r.extend_from_slice(&[0u8; 4]);
    r.extend_from_slice(b"hi");
    spoil(&mut r);
    r
}

fn decode(frame: &[u8]) -> Result<FrameBody, HiveError> {
    FrameDecoder::new(Limits::default())
        .unwrap()
        .decode(frame)
        .map(|f| f.body)
}

fn inconsistent(result: Result<FrameBody, HiveError>) -> &'static str {
    match result {
        Err(HiveError::InvalidFrame(FrameError::Inconsistent(why))) => why,
        other => panic!("expected an inconsistent-frame error, got {other:?}"),
    }
}

#[test]
fn a_canonical_record_decodes() {
    let r = record(|_| {});
    assert!(decode(&frame(0, false, 1, r.len() as u32, &r)).is_ok());
}

#[test]
fn fields_the_spec_calls_zero_must_be_zero() {
    let broadcast_with_id = record(|r| r[32] = 1);
    let correlation_without_flag = record(|r| r[63] = 7);
    let ttl_without_flag = record(|r| r[79] = 7);
    for (r, what) in [
        (broadcast_with_id, "broadcast"),
        (correlation_without_flag, "correlation"),
        (ttl_without_flag, "ttl"),
    ] {
        let why = inconsistent(decode(&frame(0, false, 1, r.len() as u32, &r)));
        assert!(why.contains(what), "{why}");
    }
}

#[test]
fn a_trace_context_follows_the_envelope_when_flag_bit_2_is_set() {
    // Flag bit 2, then trace id, span id and trace flags before the payload.
    let traced = record(|r| {
        r[54] = 4;
        let payload = r.split_off(95);
        r.extend_from_slice(&[0xAB; 16]);
        r.extend_from_slice(&[0xCD; 8]);
        r.push(1);
        r.extend_from_slice(&payload);
    });
    let FrameBody::Messages(m) = decode(&frame(0, false, 1, traced.len() as u32, &traced)).unwrap()
    else {
        panic!("a message frame");
    };
    let trace = m[0].trace.as_deref().unwrap();
    assert_eq!(
        (trace.trace_id, trace.span_id, trace.flags),
        ([0xAB; 16], [0xCD; 8], 1)
    );
    assert_eq!(&m[0].payload[..], b"hi");
    // Cut short: the trace context is not there.
    let short = record(|r| r[54] = 4);
    assert!(decode(&frame(0, false, 1, short.len() as u32, &short)).is_err());
    // Bits 3 to 7 stay reserved.
    for bit in 3..8 {
        let r = record(|r| r[54] = 1 << bit);
        match decode(&frame(0, false, 1, r.len() as u32, &r)) {
            Err(HiveError::InvalidFrame(FrameError::ReservedFlags(_))) => {}
            other => panic!("bit {bit}: {other:?}"),
        }
    }
}

#[test]
fn control_arguments_an_op_does_not_use_must_be_zero() {
    let control = |op: u8, arg: [u8; 16]| {
        let mut r = vec![op];
        r.extend_from_slice(&arg);
        frame(0, true, 1, 17, &r)
    };
    let mut ack_tail = [0u8; 16];
    ack_tail[0] = 5;
    ack_tail[12] = 1;
    let mut hello_tail = [0u8; 16];
    hello_tail[0] = 1;
    hello_tail[3] = 9;
    for bad in [
        control(3, ack_tail),
        control(4, hello_tail),
        control(5, [1; 16]),
    ] {
        inconsistent(decode(&bad));
    }
    let mut ack = [0u8; 16];
    ack[..8].copy_from_slice(&42u64.to_le_bytes());
    assert_eq!(
        decode(&control(3, ack)).unwrap(),
        FrameBody::Control(vec![Control::Ack(42)])
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_gzip_body_is_one_member_and_nothing_after_it() {
    let r = record(|_| {});
    let one = gzip(&r);
    assert!(decode(&frame(1, false, 1, r.len() as u32, &one)).is_ok());
    let mut trailing = one.clone();
    trailing.extend_from_slice(b"junk");
    inconsistent(decode(&frame(1, false, 1, r.len() as u32, &trailing)));
    let (half_a, half_b) = r.split_at(40);
    let mut two_members = gzip(half_a);
    two_members.extend_from_slice(&gzip(half_b));
    inconsistent(decode(&frame(1, false, 1, r.len() as u32, &two_members)));
}

#[test]
fn a_zstd_body_is_one_regular_frame_and_nothing_after_it() {
    let r = record(|_| {});
    let one = zstd::bulk::compress(&r, 3).unwrap();
    assert!(decode(&frame(2, false, 1, r.len() as u32, &one)).is_ok());
    let (half_a, half_b) = r.split_at(40);
    let mut concatenated = zstd::bulk::compress(half_a, 3).unwrap();
    concatenated.extend_from_slice(&zstd::bulk::compress(half_b, 3).unwrap());
    inconsistent(decode(&frame(2, false, 1, r.len() as u32, &concatenated)));
    // A skippable frame (magic 0x184D2A50) in front of the real one.
    let mut skippable = vec![0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    skippable.extend_from_slice(&one);
    inconsistent(decode(&frame(2, false, 1, r.len() as u32, &skippable)));
}

#[test]
fn a_small_frame_cannot_become_a_flood_of_messages() {
    // 100,000 empty-payload records compress to a couple of kilobytes.
    let one = record(|r| {
        r.truncate(95);
        r[87..91].copy_from_slice(&0u32.to_le_bytes());
    });
    let raw: Vec<u8> = one.iter().copied().cycle().take(95 * 100_000).collect();
    let body = zstd::bulk::compress(&raw, 19).unwrap();
    assert!(body.len() < 4_096, "{} bytes", body.len());
    let flood = frame(2, false, 100_000, raw.len() as u32, &body);
    assert!(matches!(
        decode(&flood),
        Err(HiveError::LimitExceeded { .. })
    ));
    // Within the record limit, the expansion limit still holds.
    let raw: Vec<u8> = one.iter().copied().cycle().take(95 * 60_000).collect();
    let body = zstd::bulk::compress(&raw, 19).unwrap();
    let err = decode(&frame(2, false, 60_000, raw.len() as u32, &body)).unwrap_err();
    assert!(
        matches!(
            err,
            HiveError::LimitExceeded {
                limit: "decoded bytes per encoded byte",
                ..
            }
        ),
        "{err}"
    );
}
