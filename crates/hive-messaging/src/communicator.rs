//! [`Communicator`]: registers agents, hands out senders, reports.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use hive_types::{AgentId, BoundedRecycler, HiveError, HiveResult, Message, SharedRecycler};

use crate::batch::FlushReason;
use crate::config::CommunicatorConfig;
use crate::flusher;
use crate::inbox::Inbox;
use crate::mailbox::Mailbox;
use crate::sender::Sender;
use crate::shared::Shared;
use crate::stats::{CommunicatorStats, MailboxDepth};
use crate::undelivered::{Undelivered, UndeliveredReason};
use hive_types::sync::lock;

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
        let config = &self.shared.config;
        let inbox = Arc::new(Inbox::new(
            agent,
            config.mailbox_capacity,
            config.mailbox_bytes,
        ));
        self.shared.registry.register(&inbox)?;
        Ok(Mailbox::new(inbox, self.shared.clone()))
    }

    /// Unregisters `agent`: its mailbox accepts nothing more, and its owner
    /// receives what is already queued, then `Closed`.
    pub fn unregister(&self, agent: AgentId) -> HiveResult<()> {
        let inbox = self
            .shared
            .registry
            .remove(&agent)
            .ok_or(HiveError::UnknownAgent(agent))?;
        inbox.close();
        Ok(())
    }

    /// Whether `agent` can be sent to: registered here, or hosted by a
    /// connected peer.
    pub fn is_registered(&self, agent: AgentId) -> bool {
        self.shared.registry.get(&agent).is_some()
    }

    /// The sender id for messages from outside any agent (a program's own
    /// requests): transports announce it to peers like a local agent, so
    /// a reply to a request sent under it comes back from another process
    /// to the request's waiter. It has no mailbox: anything sent to it but
    /// a reply to a waiting request is undeliverable (`NoRecipient`).
    pub fn reply_address(&self) -> AgentId {
        self.shared.reply_address
    }

    /// Whether `agent` is registered with this communicator (in this
    /// process), not only reachable through a transport.
    pub fn is_local(&self, agent: AgentId) -> bool {
        self.shared.registry.is_local(&agent)
    }

    /// Every agent a message can be sent to: registered here, or hosted by
    /// a connected peer.
    pub fn agents(&self) -> Vec<AgentId> {
        self.shared.registry.agent_ids()
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
        for inbox in self.shared.registry.inboxes() {
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

    /// Takes the messages that were not delivered, oldest first, each with
    /// its reason. The communicator keeps at most `dead_letter_capacity`
    /// messages and `dead_letter_bytes` payload bytes of them (evicting the
    /// oldest); every one is counted in
    /// [`CommunicatorStats::undeliverable`], kept or not.
    pub fn take_undelivered(&self) -> Vec<Undelivered> {
        self.shared.take_dead_letters()
    }

    /// A snapshot of the counters, histograms and mailbox depths.
    pub fn stats(&self) -> CommunicatorStats {
        let shared = &self.shared;
        let mut counts = *lock(&shared.retired);
        for core in shared.live_senders() {
            counts.add(&core.counts());
        }
        let (by_reason, undeliverable, evicted) = shared.undelivered_counts();
        let replies = shared.replies();
        let epoch = shared.epoch();
        CommunicatorStats {
            sent: counts.sent,
            delivered: shared.registry.delivered() + replies,
            replies,
            pending_requests: shared.requests.waiting(),
            undeliverable,
            undeliverable_by_reason: UndeliveredReason::ALL
                .iter()
                .map(|r| (*r, by_reason.get(r.index()).copied().unwrap_or(0)))
                .collect(),
            undelivered_evicted: evicted,
            flushes: FlushReason::ALL
                .iter()
                .map(|r| (*r, counts.flushes.get(r.index()).copied().unwrap_or(0)))
                .collect(),
            batch_size: shared.recorders.batch_sizes.snapshot(),
            batch_latency_ns: shared.recorders.latency_ns.snapshot(),
            mailboxes: shared
                .registry
                .inboxes()
                .iter()
                .map(|i| MailboxDepth {
                    agent: i.agent,
                    queued: i.depth(),
                    accepted: i.reserved(),
                    lag: i
                        .oldest(epoch)
                        .map_or(std::time::Duration::ZERO, |at| at.elapsed()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_mailboxes_leave_nothing_behind() {
        let comm = Communicator::new(CommunicatorConfig::default()).unwrap();
        let sender = comm.sender();
        // Fewer under Miri, where each round takes milliseconds.
        let rounds = if cfg!(miri) { 200 } else { 10_000 };
        for _ in 0..rounds {
            let agent = AgentId::random();
            let mut mailbox = comm.register(agent).unwrap();
            sender
                .send(Message::new(AgentId::nil(), agent, "x"))
                .unwrap();
            sender.flush();
            assert!(mailbox.recv().is_ok());
        }
        assert_eq!(comm.shared.registry.tracked(), 0);
        assert!(comm.agents().is_empty());
        assert!(
            comm.shared.registry.capacity() <= 64,
            "the table gave its memory back"
        );
        assert_eq!(
            comm.stats().delivered,
            rounds,
            "the retired total keeps count"
        );
    }
}
