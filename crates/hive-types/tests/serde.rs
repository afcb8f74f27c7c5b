//! Serde round trips of the public data types (feature `serde`).
#![cfg(feature = "serde")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hive_types::{AgentId, Message, MessageId, MessageKind, Priority, Recipient, Timestamp};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![
        (0u32..=13).prop_filter_map("built-in kind", MessageKind::from_code),
        any::<u16>().prop_map(MessageKind::Custom),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u128>(),
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        kind(),
        proptest::sample::select(Priority::ALL.to_vec()),
        any::<u64>(),
        proptest::option::of(any::<u128>()),
        proptest::option::of(0u64..1_000_000_000),
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::option::of((any::<u128>(), any::<u64>(), any::<u8>())),
    )
        .prop_map(
            |(id, sender, to, kind, prio, at, corr, ttl, payload, trace)| Message {
                id: MessageId::from_u128(id),
                sender: AgentId::from_u128(sender),
                recipient: to.map_or(Recipient::Broadcast, |r| {
                    Recipient::Agent(AgentId::from_u128(r))
                }),
                kind,
                priority: prio,
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

proptest! {
    #[test]
    fn message_round_trips_through_json(m in message()) {
        let text = serde_json::to_string(&m).unwrap();
        let back: Message = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, m);
    }
}

#[test]
fn ids_serialize_as_plain_uuid_strings() {
    let id = AgentId::random();
    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    assert_eq!(
        serde_json::to_string(&Priority::Critical).unwrap(),
        "\"critical\""
    );
}
