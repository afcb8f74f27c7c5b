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

/// How a JetStream frame is acknowledged (nothing without the feature).
#[cfg(feature = "jetstream")]
pub(crate) type Arrived = super::jetstream::Arrived;
#[cfg(not(feature = "jetstream"))]
pub(crate) type Arrived = std::convert::Infallible;

struct Incoming {
    message: async_nats::Message,
    target: Target,
    /// Set for a frame read from a JetStream consumer.
    durable: Option<Arrived>,
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
        durable: Option<Arrived>,
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

/// The group subscriptions (agent subscriptions live in their task).
pub(crate) struct Subscriptions {
    forward: Forward,
    groups: Mutex<Vec<JoinHandle<()>>>,
}

impl Subscriptions {
    pub(crate) async fn join_group(
        &self,
        t: &Arc<Transport>,
        group: &str,
        member: AgentId,
    ) -> HiveResult<()> {
        #[cfg(feature = "jetstream")]
        if let Some(d) = &t.durable {
            let whom = Consuming::Group(group.to_string());
            let consumer = consumer_for(t, d, &whom).await?;
            let task = tokio::spawn(run(
                t.clone(),
                consumer,
                whom,
                Target::Member(member),
                self.forward.clone(),
            ));
            lock(&self.groups).push(task);
            return Ok(());
        }
        let sub = t
            .client
            .queue_subscribe(t.group_subject(group), group.to_string())
            .await
            .map_err(|e| nats_error("queue subscribe", &e))?;
        let task = tokio::spawn(self.forward.clone().run(sub, Target::Member(member)));
        lock(&self.groups).push(task);
        super::sync(&t.client).await
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for task in lock(&self.groups).drain(..) {
            task.abort();
        }
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
    let mut agents = AgentSubscriptions {
        forward: forward.clone(),
        live: HashMap::new(),
        cursor: t.shared.registry.local_sequence(),
    };
    agents.resync(&t).await;
    let tasks = vec![
        tokio::spawn(forward.clone().run(broadcast, Target::Broadcast)),
        tokio::spawn(agents.track(t.clone())),
        tokio::spawn(deliver_all(t.clone(), rx, decoder, local)),
    ];
    super::sync(&t.client).await?;
    Ok((
        Subscriptions {
            forward,
            groups: Mutex::new(Vec::new()),
        },
        tasks,
    ))
}

/// One subscription per local agent, kept in step with the registry's log
/// of local changes.
struct AgentSubscriptions {
    forward: Forward,
    live: HashMap<AgentId, JoinHandle<()>>,
    cursor: u64,
}

impl AgentSubscriptions {
    async fn subscribe(&mut self, t: &Arc<Transport>, agent: AgentId) {
        if self.live.contains_key(&agent) {
            return;
        }
        #[cfg(feature = "jetstream")]
        if let Some(d) = &t.durable {
            let whom = Consuming::Agent(agent);
            match consumer_for(t, d, &whom).await {
                Ok(consumer) => {
                    let forward = self.forward.clone();
                    let task =
                        tokio::spawn(run(t.clone(), consumer, whom, Target::Agents, forward));
                    self.live.insert(agent, task);
                }
                Err(_) => t.counters.rejected("consumer"),
            }
            return;
        }
        match t.client.subscribe(t.agent_subject(&agent)).await {
            Ok(sub) => {
                let task = tokio::spawn(self.forward.clone().run(sub, Target::Agents));
                self.live.insert(agent, task);
            }
            Err(_) => t.counters.rejected("subscribe"),
        }
    }

    fn unsubscribe(&mut self, agent: &AgentId) {
        if let Some(task) = self.live.remove(agent) {
            task.abort(); // dropping the subscriber unsubscribes
        }
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

impl Drop for AgentSubscriptions {
    fn drop(&mut self) {
        for (_, task) in self.live.drain() {
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
                // durable frame goes to the dead letters.
                t.counters.rejected("decode");
                if let Some(arrived) = durable {
                    undecodable(&t, arrived, message.payload).await;
                }
                continue;
            }
        };
        // A durable frame is acknowledged when this receipt's last clone
        // goes: at once for a control frame, after handling for messages.
        let receipt = durable.and_then(|arrived| receipt_for(&t, arrived));
        let FrameBody::Messages(mut messages) = frame.body else {
            continue; // control frames mean nothing over NATS
        };
        if let Some(receipt) = receipt {
            for m in &mut messages {
                m.receipt = Some(receipt.clone());
            }
            let per_turn = t.config.messages_per_turn;
            deliver(&t.shared, &local, messages, target, per_turn, &t.counters).await;
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

#[cfg(feature = "jetstream")]
fn receipt_for(t: &Arc<Transport>, arrived: Arrived) -> Option<hive_types::Receipt> {
    super::jetstream::settle_frame(t, arrived)
}

#[cfg(not(feature = "jetstream"))]
fn receipt_for(_: &Arc<Transport>, arrived: Arrived) -> Option<hive_types::Receipt> {
    match arrived {}
}

#[cfg(feature = "jetstream")]
async fn undecodable(t: &Transport, arrived: Arrived, frame: Bytes) {
    if let Some(d) = &t.durable {
        super::jetstream::dead_letter(d, arrived, frame, "undecodable").await;
    }
}

#[cfg(not(feature = "jetstream"))]
async fn undecodable(_: &Transport, arrived: Arrived, _: Bytes) {
    match arrived {}
}
