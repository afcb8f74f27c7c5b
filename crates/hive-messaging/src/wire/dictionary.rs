//! Trained zstd dictionaries.

use std::fmt;
use std::sync::Arc;

use hive_types::{HiveError, HiveResult, Message};

use super::format::write_message;

/// A zstd dictionary with its id (the id zstd writes into frames).
///
/// Train one from sample messages with [`Dictionary::train`]; give the same
/// dictionary to the encoder and to every decoder that reads its frames.
#[derive(Clone, PartialEq, Eq)]
pub struct Dictionary {
    id: u32,
    bytes: Arc<[u8]>,
}

/// First bytes of a zstd dictionary.
const DICT_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

impl Dictionary {
    /// Reads a dictionary produced by zstd (this crate, `zstd --train`, ...).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> HiveResult<Self> {
        let bytes = bytes.into();
        let header: Option<[u8; 8]> = bytes.get(..8).and_then(|h| h.try_into().ok());
        let Some(header) = header else {
            return Err(dict_error("shorter than a dictionary header"));
        };
        if header[..4] != DICT_MAGIC {
            return Err(dict_error("not a zstd dictionary (bad magic)"));
        }
        let id = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if id == 0 {
            return Err(dict_error("dictionary id 0 is reserved"));
        }
        Ok(Dictionary { id, bytes })
    }

    /// Trains a dictionary of at most `max_size` bytes from `samples`
    /// (their wire records: train on messages like those it will compress).
    pub fn train<'a>(
        samples: impl IntoIterator<Item = &'a Message>,
        max_size: usize,
    ) -> HiveResult<Self> {
        let records: Vec<Vec<u8>> = samples
            .into_iter()
            .map(|m| {
                let mut r = Vec::new();
                write_message(&mut r, m);
                r
            })
            .collect();
        if records.len() < 8 {
            return Err(dict_error("needs at least 8 sample messages"));
        }
        let bytes = zstd::dict::from_samples(&records, max_size)
            .map_err(|e| dict_error(&format!("training failed: {e}")))?;
        Dictionary::from_bytes(bytes)
    }

    /// The id carried in frames compressed with it.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The dictionary bytes (to store or ship to peers).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn dict_error(reason: &str) -> HiveError {
    HiveError::Payload {
        what: "zstd dictionary",
        reason: reason.to_string(),
    }
}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_dictionary() {
        assert!(Dictionary::from_bytes(vec![1u8, 2, 3]).is_err());
        assert!(Dictionary::from_bytes(vec![0u8; 64]).is_err());
        let mut fake = DICT_MAGIC.to_vec();
        fake.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(Dictionary::from_bytes(fake).unwrap().id(), 7);
    }
}
