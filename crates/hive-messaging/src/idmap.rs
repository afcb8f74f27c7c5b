//! Hash maps keyed by agent id. Ids are random UUIDs, so a multiply-fold of
//! their bits is a fine hash and much cheaper than SipHash on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by [`AgentId`](hive_types::AgentId).
pub(crate) type IdMap<V> = HashMap<hive_types::AgentId, V, BuildHasherDefault<IdHasher>>;

/// Folds written bytes into 64 bits with a Fibonacci multiply.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // An id is 16 bytes: fold its two halves without a loop.
        if let Ok(id) = <[u8; 16]>::try_from(bytes) {
            let v = u128::from_le_bytes(id);
            self.0 = ((v as u64) ^ ((v >> 64) as u64).rotate_left(32) ^ self.0)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            return;
        }
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    #[test]
    fn sequential_ids_spread_over_buckets() {
        let n: u32 = if cfg!(miri) { 500 } else { 10_000 };
        let mut map: IdMap<u32> = IdMap::default();
        for i in 0..n {
            map.insert(AgentId::from_u128(u128::from(i)), i);
        }
        for i in 0..n {
            assert_eq!(map.get(&AgentId::from_u128(u128::from(i))), Some(&i));
        }
        let mut tops = std::collections::HashSet::new();
        for i in 0..256u128 {
            let mut h = IdHasher::default();
            std::hash::Hash::hash(&AgentId::from_u128(i), &mut h);
            tops.insert(h.finish() >> 57);
        }
        assert!(tops.len() > 64, "high bits vary ({} distinct)", tops.len());
    }
}
