//! What a link's reader, writer and announcer share.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hive_types::AgentId;
use tokio::sync::Notify;

use super::security::Handshake;
use super::{PartialBudget, TcpConfig};
use crate::shared::Shared;
use crate::transport::{Counters, InFlight, LinkQueue};

/// State the link's tasks share.
pub(crate) struct LinkState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: Arc<LinkQueue>,
    pub(crate) config: TcpConfig,
    pub(crate) counters: Counters,
    pub(crate) in_flight: Mutex<InFlight>,
    /// Acknowledgements arrived, or the handshake completed: the writer
    /// looks at its window again.
    pub(crate) progress: Notify,
    pub(crate) handshake: Mutex<Handshake>,
    /// The peer passed the handshake: data may flow.
    pub(crate) ready: AtomicBool,
    /// Notified when `ready` is set.
    pub(crate) ready_changed: Notify,
    pub(crate) remote_agents: Mutex<HashSet<AgentId>>,
    pub(crate) closing: AtomicBool,
    pub(crate) budget: Arc<PartialBudget>,
}
