//! Inbound: subscriptions for the agents this process hosts, the broadcast
//! subject and joined groups; frames decoded and handed to local mailboxes,
//! then acknowledged.
//!
//! Frames wait for delivery in one queue bounded in bytes
//! (`inbound_bytes`); while it is full the subscriptions stop reading and
//! the client's own per-subscription buffers (`subscription_capacity`)
//! take the rest: beyond that the client drops messages and their senders
//! see no acknowledgement (unknown).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use hive_types::{AgentId, HiveResult};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

#[cfg(feature = "jetstream")]
use super::jetstream::{consumer_for, run, Consuming};
use super::{nats_error, Transport};
use crate::registry::LocalChanges;
use crate::transport::{deliver, Target};
use crate::wire::{FrameBody, FrameDecoder};
use crate::Sender;
use hive_types::sync::lock;
use hive_types::ReceiptGuard;

struct Incoming {
    message: async_nats::Message,
    target: Target,
    /// Set for a frame read from a JetStream consumer: acknowledged once
    /// its messages are handled, handed back if dropped unfinished.
    durable: Option<ReceiptGuard>,
    _room: OwnedSemaphorePermit,
}

/// Where subscriptions send what they read: a queue bounded in frames and
/// (through the semaphore) in bytes.
#[derive(Clone)]
pub(crate) struct Forward {
    tx: mpsc::Sender<Incoming>,
    room: Arc<Semaphore>,
    max_bytes: u32,
}

impl Forward {
    async fn run(self, mut sub: async_nats::Subscriber, target: Target) {
        while let Some(message) = sub.next().await {
            if !self.push(message, target, None).await {
                return;
            }
        }
    }

    /// Queues one frame, waiting for room; false once delivery stopped.
    pub(crate) async fn push(
        &self,
        message: async_nats::Message,
        target: Target,
        durable: Option<ReceiptGuard>,
    ) -> bool {
        let want = u32::try_from(message.payload.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_bytes);
        let Ok(room) = self.room.clone().acquire_many_owned(want).await else {
            return false;
        };
        let incoming = Incoming {
            message,
            target,
            durable,
            _room: room,
        };
        self.tx.send(incoming).await.is_ok()
    }
}

/// What reads the groups each local member joined; a member's entries go
/// when it leaves.
type Groups = Arc<Mutex<HashMap<AgentId, Tasks>>>;

/// The group subscriptions (agent subscriptions live in their task).
pub(crate) struct Subscriptions {
    forward: Forward,
    groups: Groups,
}

impl Subscriptions {
    pub(crate) async fn join_group(
        &self,
        t: &Arc<Transport>,
        group: &str,
        member: AgentId,
    ) -> HiveResult<()> {
        if group.is_empty() || group.contains(['.', '*', '>', ' ', '\t']) {
            return Err(hive_types::HiveError::config(
                "group",
                "one subject token: not empty, no '.', '*', '>' or whitespace",
            ));
        }
        #[cfg(feature = "jetstream")]
        if let Some(d) = &t.durable {
            let whom = Consuming::Group(group.to_string());
            consumer_for(t, d, &whom).await?; // its settings are checked now
            let forward = self.forward.clone();
            let task = tokio::spawn(run(t.clone(), whom, Target::Member(member), forward));
            lock(&self.groups).entry(member).or_default().0.push(task);
            return Ok(());
        }
        let sub = t
            .client
            .queue_subscribe(t.group_subject(group), group.to_string())
            .await
            .map_err(|e| nats_error("queue subscribe", &e))?;
        let task = tokio::spawn(self.forward.clone().run(sub, Target::Member(member)));
        lock(&self.groups).entry(member).or_default().0.push(task);
        super::sync(&t.client).await
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        lock(&self.groups).clear(); // aborts every group's reader
    }
}

pub(crate) async fn start(
    t: Arc<Transport>,
    local: Sender,
) -> HiveResult<(Subscriptions, Vec<JoinHandle<()>>)> {
    let max_bytes = u32::try_from(t.config.inbound_bytes).unwrap_or(u32::MAX);
    let (tx, rx) = mpsc::channel::<Incoming>(t.config.inbound_frames);
    let forward = Forward {
        tx,
        room: Arc::new(Semaphore::new(max_bytes as usize)),
        max_bytes,
    };
    let broadcast = t
        .client
        .subscribe(t.broadcast_subject())
        .await
        .map_err(|e| nats_error("subscribe", &e))?;
    let mut decoder = FrameDecoder::new(t.config.limits)?;
    for d in &t.config.dictionaries {
        decoder.add_dictionary(d)?;
    }
    // Agents hosted now are subscribed before `connect` returns.
    let groups = Groups::default();
    let mut agents = AgentSubscriptions {
        forward: forward.clone(),
        live: HashMap::new(),
        groups: groups.clone(),
        cursor: t.shared.registry.local_sequence(),
    };
    agents.resync(&t).await;
    let tasks = vec![
        tokio::spawn(forward.clone().run(broadcast, Target::Broadcast)),
        tokio::spawn(agents.track(t.clone())),
        tokio::spawn(deliver_all(t.clone(), rx, decoder, local)),
    ];
    super::sync(&t.client).await?;
    Ok((Subscriptions { forward, groups }, tasks))
}

/// One subscription per local agent, kept in step with the registry's log
/// of local changes.
struct AgentSubscriptions {
    forward: Forward,
    live: HashMap<AgentId, Tasks>,
    /// Shared with [`Subscriptions`]: a member that leaves stops reading
    /// its groups, so their frames go to members that are still there.
    groups: Groups,
    cursor: u64,
}

impl AgentSubscriptions {
    async fn subscribe(&mut self, t: &Arc<Transport>, agent: AgentId) {
        if self.live.contains_key(&agent) {
            return;
        }
        let mut tasks = Tasks::default();
        // With durable mail an agent reads its stream subject too; replies
        // (and the reply address) stay on core NATS, where their asker
        // waits with a deadline.
        #[cfg(feature = "jetstream")]
        if t.durable.is_some() && agent != t.shared.reply_address {
            let (whom, forward) = (Consuming::Agent(agent), self.forward.clone());
            tasks
                .0
                .push(tokio::spawn(run(t.clone(), whom, Target::Agents, forward)));
        }
        match t.client.subscribe(t.agent_subject(&agent)).await {
            Ok(sub) => {
                let task = tokio::spawn(self.forward.clone().run(sub, Target::Agents));
                tasks.0.push(task);
            }
            Err(_) => t.counters.rejected("subscribe"),
        }
        self.live.insert(agent, tasks);
    }

    fn unsubscribe(&mut self, agent: &AgentId) {
        // Aborting drops the subscriber, which unsubscribes.
        self.live.remove(agent);
        lock(&self.groups).remove(agent);
    }

    /// Compares with every local agent (at start, or after falling behind).
    async fn resync(&mut self, t: &Arc<Transport>) {
        let now: HashSet<AgentId> = t.shared.hosted().into_iter().collect();
        for agent in &now {
            self.subscribe(t, *agent).await;
        }
        let gone: Vec<AgentId> = self
            .live
            .keys()
            .filter(|a| !now.contains(a))
            .copied()
            .collect();
        for agent in gone {
            self.unsubscribe(&agent);
        }
    }

    async fn track(mut self, t: Arc<Transport>) {
        loop {
            let changed = t.shared.registry.locals_changed.listen();
            match t.shared.registry.local_changes_since(self.cursor) {
                LocalChanges::Since(list, next) if list.is_empty() => {
                    self.cursor = next;
                    changed.await;
                    continue;
                }
                LocalChanges::Since(list, next) => {
                    for (agent, joined) in list {
                        match joined {
                            true => self.subscribe(&t, agent).await,
                            false => self.unsubscribe(&agent),
                        }
                    }
                    self.cursor = next;
                }
                LocalChanges::Resync(next) => {
                    self.resync(&t).await;
                    self.cursor = next;
                }
            }
            // Subscriptions reach the server before senders are told.
            let _ = super::sync(&t.client).await;
        }
    }
}

/// The tasks reading one agent's subjects, aborted when dropped.
#[derive(Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn deliver_all(
    t: Arc<Transport>,
    mut rx: mpsc::Receiver<Incoming>,
    mut decoder: FrameDecoder,
    local: Sender,
) {
    while let Some(incoming) = rx.recv().await {
        let Incoming {
            message,
            target,
            durable,
            ..
        } = incoming;
        t.counters.bytes_in(message.payload.len());
        let frame = match decoder.decode(&message.payload) {
            Ok(frame) => frame,
            Err(_) => {
                // The sender's acknowledgement times out: unknown there. A
                // durable frame's guard fails it: it comes back, and after
                // `max_deliver` tries goes to the dead letters.
                t.counters.rejected("decode");
                continue;
            }
        };
        let FrameBody::Messages(mut messages) = frame.body else {
            if let Some(guard) = durable {
                guard.done();
            }
            continue; // control frames mean nothing over NATS
        };
        if let Some(guard) = durable {
            if let Some(receipt) = guard.receipt() {
                for m in &mut messages {
                    m.receipt = Some(receipt.clone());
                }
            }
            let per_turn = t.config.messages_per_turn;
            deliver(&t.shared, &local, messages, target, per_turn, &t.counters).await;
            // Every message was handed out (or kept as undelivered, which
            // fails it): the receipt now settles when the last is dropped.
            // Aborted before this, the guard fails the frame.
            guard.done();
            continue; // acknowledged by the receipt, not by a reply
        }
        let per_turn = t.config.messages_per_turn;
        deliver(&t.shared, &local, messages, target, per_turn, &t.counters).await;
        if let Some(reply) = message.reply {
            if t.client.publish(reply, Bytes::new()).await.is_err() {
                t.counters.rejected("ack");
            }
        }
    }
}
