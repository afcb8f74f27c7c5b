//! Feeds arbitrary bytes to the frame decoder, as they come and with their
//! checksums repaired (so mutations reach the length, codec and record
//! parsing behind the CRCs). The decoder must return, never panic, and
//! never allocate past its limits.
#![no_main]

use std::sync::Mutex;

use hive_messaging::wire::{FrameDecoder, Limits};
use libfuzzer_sys::fuzz_target;

static DECODER: Mutex<Option<FrameDecoder>> = Mutex::new(None);

fn repair(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 40 {
        return None;
    }
    let mut frame = data.to_vec();
    let body_crc = crc32fast::hash(&frame[40..]);
    frame[32..36].copy_from_slice(&body_crc.to_le_bytes());
    // Make the encoded length match what is there, most of the time.
    if frame[0] & 1 == 0 {
        let len = (frame.len() - 40) as u32;
        frame[16..20].copy_from_slice(&len.to_le_bytes());
    }
    let header_crc = crc32fast::hash(&frame[..36]);
    frame[36..40].copy_from_slice(&header_crc.to_le_bytes());
    Some(frame)
}

fuzz_target!(|data: &[u8]| {
    let mut guard = DECODER.lock().unwrap_or_else(|e| e.into_inner());
    let decoder = guard.get_or_insert_with(|| {
        let limits = Limits { max_frame: 1 << 20, max_decoded: 4 << 20, max_records: 100_000 };
        FrameDecoder::new(limits).expect("zstd context")
    });
    let _ = decoder.frame_len(data);
    let _ = decoder.decode(data);
    if let Some(frame) = repair(data) {
        let _ = decoder.frame_len(&frame);
        let _ = decoder.decode(&frame);
    }
});
