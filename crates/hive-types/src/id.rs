//! Identifiers: UUID newtypes generated without a syscall per id.
//!
//! `Uuid::new_v4()` asks the operating system for 16 random bytes on every
//! call. A swarm mints an id per message, so each thread here seeds a fast
//! generator (wyrand, via `fastrand`) once from the OS and draws ids from it.
//! The ids are still valid version-4 UUIDs with 122 random bits.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

thread_local! {
    static ID_RNG: RefCell<fastrand::Rng> = RefCell::new(seeded_rng());
}

/// One OS-random seed per thread: distinct across threads and processes.
fn seeded_rng() -> fastrand::Rng {
    let seed = Uuid::new_v4().as_u128();
    // Fold the 122 random bits into wyrand's 64-bit state.
    fastrand::Rng::with_seed((seed as u64) ^ ((seed >> 64) as u64))
}

/// A random version-4 UUID drawn from this thread's generator.
fn fast_v4() -> Uuid {
    let bits = ID_RNG
        .try_with(|rng| rng.borrow_mut().u128(..))
        // The thread-local is gone only while this thread is being torn down;
        // fall back to the OS generator then.
        .unwrap_or_else(|_| Uuid::new_v4().as_u128());
    uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid()
}

/// Error returned when a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind}: expected a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8 ({reason})")]
pub struct ParseIdError {
    kind: &'static str,
    input: String,
    reason: String,
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id, drawn from a per-thread generator (no syscall).
            #[inline]
            pub fn random() -> Self {
                Self(fast_v4())
            }

            /// The all-zero id, useful as a placeholder in tests and examples.
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Builds an id from its 128-bit big-endian value.
            pub const fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The 128-bit big-endian value of the id.
            pub const fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            /// The 16 bytes of the id, in UUID (big-endian) order.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Builds an id from 16 bytes in UUID (big-endian) order.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|e| ParseIdError {
                    kind: stringify!($name),
                    input: s.chars().take(64).collect(),
                    reason: e.to_string(),
                })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

define_id! {
    /// Identifies an agent of the swarm.
    AgentId
}

define_id! {
    /// Identifies one message; responses carry the request's id as correlation id.
    MessageId
}

define_id! {
    /// Identifies a task handed to a worker.
    TaskId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4() {
        let id = AgentId::random();
        assert_eq!(id.as_uuid().get_version_num(), 4);
        assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn display_and_parse_round_trip() {
        let id = MessageId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<MessageId>().unwrap(), id);
    }

    #[test]
    fn parse_error_names_the_type_and_the_fix() {
        let err = "not-a-uuid".parse::<TaskId>().unwrap_err().to_string();
        assert!(err.contains("TaskId"), "{err}");
        assert!(err.contains("expected a UUID"), "{err}");
    }

    #[test]
    fn byte_and_integer_forms_round_trip() {
        let id = AgentId::random();
        assert_eq!(AgentId::from_bytes(*id.as_bytes()), id);
        assert_eq!(AgentId::from_u128(id.as_u128()), id);
        assert_ne!(id, AgentId::nil());
    }
}
