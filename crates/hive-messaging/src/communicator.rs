//! [`Communicator`]: registers agents, hands out senders, reports.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use hive_types::{AgentId, BoundedRecycler, HiveError, HiveResult, Message, SharedRecycler};

use crate::batch::FlushReason;
use crate::config::CommunicatorConfig;
use crate::flusher;
use crate::inbox::Inbox;
use crate::mailbox::Mailbox;
use crate::sender::Sender;
use crate::shared::{lock, Shared};
use crate::stats::{CommunicatorStats, MailboxDepth};

/// The swarm communicator: a registry of agent mailboxes, and senders that
/// batch per destination. Cloning makes another handle to the same one.
///
/// See the [crate documentation](crate) for the batching rules and an example.
#[derive(Clone)]
pub struct Communicator {
    shared: Arc<Shared>,
}

impl Communicator {
    /// A communicator recycling batch buffers through a plain bounded recycler.
    pub fn new(config: CommunicatorConfig) -> HiveResult<Self> {
        let per_batch = config
            .max_messages
            .saturating_mul(std::mem::size_of::<Message>());
        let recycler = Arc::new(BoundedRecycler::new(config.recycled_batches, per_batch * 2));
        Communicator::with_recycler(config, recycler)
    }

    /// A communicator taking batch buffers from `recycler` (the hive-types
    /// seam; hive-core plugs a hive-mempool pool in here).
    pub fn with_recycler(
        config: CommunicatorConfig,
        recycler: SharedRecycler<VecDeque<Message>>,
    ) -> HiveResult<Self> {
        config.validate()?;
        let shared = Arc::new(Shared::new(config, recycler));
        flusher::spawn(&shared)?;
        Ok(Communicator { shared })
    }

    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The configuration in use.
    pub fn config(&self) -> &CommunicatorConfig {
        &self.shared.config
    }

    /// Registers `agent` and returns its mailbox.
    pub fn register(&self, agent: AgentId) -> HiveResult<Mailbox> {
        if self.shared.is_closed() {
            return Err(HiveError::Closed {
                what: "communicator",
            });
        }
        let inbox = Arc::new(Inbox::new(agent, self.shared.config.mailbox_capacity));
        {
            let mut registry = self
                .shared
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if registry.contains_key(&agent) {
                return Err(HiveError::AlreadyRegistered(agent));
            }
            registry.insert(agent, inbox.clone());
        }
        self.shared.registry_changed.notify(usize::MAX);
        Ok(Mailbox::new(inbox, self.shared.clone()))
    }

    /// Unregisters `agent`: its mailbox accepts nothing more, and its owner
    /// receives what is already queued, then `Closed`.
    pub fn unregister(&self, agent: AgentId) -> HiveResult<()> {
        let inbox = self
            .shared
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&agent)
            .ok_or(HiveError::UnknownAgent(agent))?;
        inbox.close();
        self.shared.registry_changed.notify(usize::MAX);
        Ok(())
    }

    /// Whether `agent` is registered.
    pub fn is_registered(&self, agent: AgentId) -> bool {
        self.shared.inbox(&agent).is_some()
    }

    /// Every agent a message can be sent to: registered here, or hosted by
    /// a connected peer.
    pub fn agents(&self) -> Vec<AgentId> {
        self.shared.agent_ids()
    }

    /// A new sender handle with its own batches.
    pub fn sender(&self) -> Sender {
        Sender::new(self.shared.clone())
    }

    /// Flushes every sender's batches now.
    pub fn flush_all(&self) {
        for core in self.shared.live_senders() {
            core.flush_all(&self.shared, FlushReason::Explicit);
        }
    }

    /// Closes the communicator: sends are refused from now on, every batch
    /// senders hold is delivered, and each mailbox returns `Closed` once its
    /// owner has received what was queued. Nothing accepted is dropped.
    pub fn close(&self) {
        self.shared.mark_closed();
        for core in self.shared.live_senders() {
            core.flush_all(&self.shared, FlushReason::Close);
        }
        for inbox in self.shared.inboxes() {
            inbox.close();
        }
        if let Some(thread) = self.shared.flusher.thread.get() {
            thread.unpark();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Takes the messages that could not be delivered (their recipient
    /// unregistered or dropped its mailbox with mail in it). At most
    /// `dead_letter_capacity` are kept; the rest are only counted in
    /// [`CommunicatorStats::undeliverable`].
    pub fn take_undelivered(&self) -> Vec<Message> {
        self.shared.take_dead_letters()
    }

    /// A snapshot of the counters, histograms and mailbox depths.
    pub fn stats(&self) -> CommunicatorStats {
        let shared = &self.shared;
        let (mut counts, delivered) = {
            let retired = lock(&shared.retired);
            let mut delivered = retired.1;
            let mut inboxes = lock(&shared.all_inboxes);
            inboxes.retain(|w| w.strong_count() > 0);
            for inbox in inboxes.iter().filter_map(std::sync::Weak::upgrade) {
                delivered += inbox.delivered();
            }
            (retired.0, delivered)
        };
        for core in shared.live_senders() {
            counts.add(&core.counts());
        }
        CommunicatorStats {
            sent: counts.sent,
            delivered,
            undeliverable: shared.undeliverable.load(Ordering::Relaxed),
            flushes: FlushReason::ALL
                .iter()
                .map(|r| (*r, counts.flushes.get(r.index()).copied().unwrap_or(0)))
                .collect(),
            batch_size: shared.recorders.batch_sizes.snapshot(),
            batch_latency_ns: shared.recorders.latency_ns.snapshot(),
            mailboxes: shared
                .inboxes()
                .iter()
                .map(|i| MailboxDepth {
                    agent: i.agent,
                    queued: i.queued(),
                    accepted: i.reserved(),
                })
                .collect(),
        }
    }
}

impl fmt::Debug for Communicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shared, f)
    }
}
