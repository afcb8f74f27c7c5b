//! Lifecycle messages: agents that subscribe
//! ([`SwarmSystem::subscribe`](crate::SwarmSystem::subscribe)) receive an
//! [`AgentJoined`](MessageKind::AgentJoined) message when an agent starts,
//! an [`AgentLeft`](MessageKind::AgentLeft) one when it stops, and, with
//! [`SwarmBuilder::heartbeat`](crate::SwarmBuilder::heartbeat), a
//! [`Heartbeat`](MessageKind::Heartbeat) every interval.
//!
//! Payloads (all integers little-endian):
//! - joined: 16-byte agent id, then the name in UTF-8 (empty: no name);
//! - left: 16-byte agent id, 1 byte reason (0 stopped, 1 panicked,
//!   2 shutdown), then the name;
//! - heartbeat: u64 agents running, u64 messages handled so far.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hive_messaging::Sender;
use hive_types::{AgentId, Message, MessageKind, Priority};

use crate::supervision::StopReason;
use hive_types::sync::lock;

/// A lifecycle message, decoded with [`LifecycleEvent::decode`]: an
/// [`AgentJoined`](MessageKind::AgentJoined),
/// [`AgentLeft`](MessageKind::AgentLeft) or
/// [`Heartbeat`](MessageKind::Heartbeat) message sent to subscribers of
/// [`SwarmSystem::subscribe`](crate::SwarmSystem::subscribe).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// An agent started.
    Joined {
        /// The agent.
        agent: AgentId,
        /// Its name, if any.
        name: Option<String>,
    },
    /// An agent stopped.
    Left {
        /// The agent.
        agent: AgentId,
        /// Its name, if any.
        name: Option<String>,
        /// Why.
        reason: StopReason,
    },
    /// The system is alive.
    Heartbeat {
        /// Agents running.
        agents: u64,
        /// Messages handled so far.
        handled: u64,
    },
}

impl LifecycleEvent {
    /// Decodes a lifecycle message (`None` for any other message).
    ///
    /// ```
    /// use hive_core::{LifecycleEvent, Message, MessageKind};
    /// # let m = Message::builder(hive_core::AgentId::nil(), hive_core::AgentId::nil()).kind(MessageKind::Data).build();
    /// match LifecycleEvent::decode(&m) {
    ///     Some(LifecycleEvent::Joined { agent, name }) => println!("{agent} joined as {name:?}"),
    ///     Some(other) => println!("{other:?}"),
    ///     None => {} // an ordinary message
    /// }
    /// ```
    pub fn decode(message: &Message) -> Option<LifecycleEvent> {
        let p = message.payload.as_ref();
        let id = |p: &[u8]| -> Option<AgentId> {
            Some(AgentId::from_bytes(p.get(..16)?.try_into().ok()?))
        };
        let name = |bytes: Option<&[u8]>| -> Option<String> {
            bytes
                .filter(|b| !b.is_empty())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        match message.kind {
            MessageKind::AgentJoined => Some(LifecycleEvent::Joined {
                agent: id(p)?,
                name: name(p.get(16..)),
            }),
            MessageKind::AgentLeft => Some(LifecycleEvent::Left {
                agent: id(p)?,
                reason: StopReason::from_code(*p.get(16)?)?,
                name: name(p.get(17..)),
            }),
            MessageKind::Heartbeat => Some(LifecycleEvent::Heartbeat {
                agents: u64::from_le_bytes(p.get(..8)?.try_into().ok()?),
                handled: u64::from_le_bytes(p.get(8..16)?.try_into().ok()?),
            }),
            _ => None,
        }
    }

    fn encode(&self) -> (MessageKind, Vec<u8>) {
        match self {
            LifecycleEvent::Joined { agent, name } => {
                let mut p = agent.as_bytes().to_vec();
                p.extend_from_slice(name.as_deref().unwrap_or("").as_bytes());
                (MessageKind::AgentJoined, p)
            }
            LifecycleEvent::Left {
                agent,
                name,
                reason,
            } => {
                let mut p = agent.as_bytes().to_vec();
                p.push(reason.code());
                p.extend_from_slice(name.as_deref().unwrap_or("").as_bytes());
                (MessageKind::AgentLeft, p)
            }
            LifecycleEvent::Heartbeat { agents, handled } => {
                let mut p = agents.to_le_bytes().to_vec();
                p.extend_from_slice(&handled.to_le_bytes());
                (MessageKind::Heartbeat, p)
            }
        }
    }
}

/// The subscribers, and the sender that reaches them.
pub(crate) struct Subscribers {
    observers: Mutex<Vec<AgentId>>,
    /// Bounded with the directory: one entry per agent at most.
    max: usize,
    /// Lifecycle messages a full or closed mailbox refused.
    pub(crate) dropped: AtomicU64,
}

impl Subscribers {
    pub(crate) fn new(max: usize) -> Self {
        Subscribers {
            observers: Mutex::new(Vec::new()),
            max,
            dropped: AtomicU64::new(0),
        }
    }

    /// Adds `observer` (once); false when the table is full.
    pub(crate) fn add(&self, observer: AgentId) -> bool {
        let mut observers = lock(&self.observers);
        if observers.contains(&observer) {
            return true;
        }
        if observers.len() >= self.max {
            return false;
        }
        observers.push(observer);
        true
    }

    pub(crate) fn remove(&self, agent: &AgentId) {
        lock(&self.observers).retain(|o| o != agent);
    }

    /// Tells every subscriber (but `about` itself) without waiting: a full
    /// mailbox misses the message, which is counted.
    pub(crate) fn notify(&self, sender: &Sender, about: Option<AgentId>, event: &LifecycleEvent) {
        let observers = lock(&self.observers).clone();
        if observers.is_empty() {
            return;
        }
        let (kind, payload) = event.encode();
        let payload = bytes::Bytes::from(payload);
        for to in observers.into_iter().filter(|o| Some(*o) != about) {
            let m = Message::builder(AgentId::nil(), to)
                .kind(kind)
                .priority(Priority::High)
                .payload(payload.clone())
                .build();
            if sender.try_send(m).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("hive_lifecycle_dropped_total").increment(1);
            }
        }
        sender.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let agent = AgentId::random();
        for event in [
            LifecycleEvent::Joined {
                agent,
                name: Some("planner".into()),
            },
            LifecycleEvent::Joined { agent, name: None },
            LifecycleEvent::Left {
                agent,
                name: None,
                reason: StopReason::Panicked,
            },
            LifecycleEvent::Heartbeat {
                agents: 3,
                handled: 99,
            },
        ] {
            let (kind, payload) = event.encode();
            let m = Message::builder(AgentId::nil(), agent)
                .kind(kind)
                .payload(payload)
                .build();
            assert_eq!(LifecycleEvent::decode(&m), Some(event));
        }
        assert_eq!(
            LifecycleEvent::decode(&Message::new(agent, agent, "x")),
            None
        );
    }
}
