//! Maps keyed by a series' hash.

use std::collections::HashMap;

/// Series ids hold the metric key's hash already: mixing them again with
/// SipHash costs more than the rest of a map insert.
#[derive(Default, Clone, Copy)]
pub(crate) struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }

    fn write_u64(&mut self, h: u64) {
        self.0 ^= h;
    }
}

/// A map keyed by a series' hash.
pub(crate) type SeriesMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<PreHashed>>;
