//! What a message is about, and where it goes.

use std::fmt;

use crate::AgentId;

/// What a message is about.
///
/// Each kind has a stable numeric code ([`MessageKind::code`]) used on the
/// wire; application-specific kinds use [`MessageKind::Custom`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MessageKind {
    /// Plain application data (the default).
    #[default]
    Data,
    /// An agent joined the swarm.
    AgentJoined,
    /// An agent left the swarm.
    AgentLeft,
    /// A task was assigned to the recipient.
    TaskAssigned,
    /// Progress report on a task.
    TaskProgress,
    /// A task finished successfully.
    TaskCompleted,
    /// A task failed.
    TaskFailed,
    /// A request that expects a [`MessageKind::Response`].
    Request,
    /// A response; its correlation id names the request.
    Response,
    /// A message sent to every agent.
    Broadcast,
    /// Coordination between agents (votes, leases, plans).
    Coordination,
    /// Liveness signal.
    Heartbeat,
    /// Health probe; answered with a response.
    HealthCheck,
    /// An error report.
    Error,
    /// An application-defined kind.
    Custom(u16),
}

const CUSTOM_BASE: u32 = 0x1_0000;

impl MessageKind {
    /// Stable wire code: built-in kinds are 0..=13, `Custom(c)` is `0x1_0000 + c`.
    pub const fn code(self) -> u32 {
        match self {
            MessageKind::Data => 0,
            MessageKind::AgentJoined => 1,
            MessageKind::AgentLeft => 2,
            MessageKind::TaskAssigned => 3,
            MessageKind::TaskProgress => 4,
            MessageKind::TaskCompleted => 5,
            MessageKind::TaskFailed => 6,
            MessageKind::Request => 7,
            MessageKind::Response => 8,
            MessageKind::Broadcast => 9,
            MessageKind::Coordination => 10,
            MessageKind::Heartbeat => 11,
            MessageKind::HealthCheck => 12,
            MessageKind::Error => 13,
            MessageKind::Custom(c) => CUSTOM_BASE + c as u32,
        }
    }

    /// The kind with wire code `code`, or `None` for an unknown code.
    pub const fn from_code(code: u32) -> Option<MessageKind> {
        Some(match code {
            0 => MessageKind::Data,
            1 => MessageKind::AgentJoined,
            2 => MessageKind::AgentLeft,
            3 => MessageKind::TaskAssigned,
            4 => MessageKind::TaskProgress,
            5 => MessageKind::TaskCompleted,
            6 => MessageKind::TaskFailed,
            7 => MessageKind::Request,
            8 => MessageKind::Response,
            9 => MessageKind::Broadcast,
            10 => MessageKind::Coordination,
            11 => MessageKind::Heartbeat,
            12 => MessageKind::HealthCheck,
            13 => MessageKind::Error,
            c if c >= CUSTOM_BASE && c <= CUSTOM_BASE + u16::MAX as u32 => {
                MessageKind::Custom((c - CUSTOM_BASE) as u16)
            }
            _ => return None,
        })
    }
}

/// Where a message goes: one agent, or every registered agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Recipient {
    /// A single agent.
    Agent(AgentId),
    /// Every agent registered with the communicator.
    Broadcast,
}

impl Recipient {
    /// The agent, when this is not a broadcast.
    pub const fn agent(&self) -> Option<AgentId> {
        match self {
            Recipient::Agent(id) => Some(*id),
            Recipient::Broadcast => None,
        }
    }
}

impl From<AgentId> for Recipient {
    fn from(id: AgentId) -> Self {
        Recipient::Agent(id)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Agent(id) => fmt::Display::fmt(id, f),
            Recipient::Broadcast => f.write_str("broadcast"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=13 {
            assert_eq!(MessageKind::from_code(code).unwrap().code(), code);
        }
        for custom in [0u16, 7, u16::MAX] {
            let kind = MessageKind::Custom(custom);
            assert_eq!(MessageKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(MessageKind::from_code(14), None);
        assert_eq!(MessageKind::from_code(0x2_0000), None);
    }

    #[test]
    fn recipient_knows_its_agent() {
        let id = AgentId::random();
        assert_eq!(Recipient::from(id).agent(), Some(id));
        assert_eq!(Recipient::Broadcast.agent(), None);
        assert_eq!(Recipient::Broadcast.to_string(), "broadcast");
    }
}
