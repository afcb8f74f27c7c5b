//! Inbound: subscriptions for the agents this process hosts, the broadcast
//! subject and joined groups; frames decoded and handed to local mailboxes,
//! then acknowledged.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use hive_types::{AgentId, HiveResult, Message, Recipient};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{nats_error, Transport};
use crate::wire::{FrameBody, FrameDecoder};
use crate::Sender;
use crate::UndeliveredReason;

/// Where a received frame goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// To each message's recipient (an agent of this process).
    Agents,
    /// To this member of a queue group.
    Group(AgentId),
    /// To every local agent but the sender.
    Broadcast,
}

struct Incoming {
    message: async_nats::Message,
    target: Target,
}

/// The per-agent subscriptions, kept in step with the local registry.
pub(crate) struct Subscriptions {
    forward: mpsc::Sender<Incoming>,
    groups: Mutex<Vec<JoinHandle<()>>>,
}

impl Subscriptions {
    pub(crate) async fn join_group(
        &self,
        t: &Transport,
        group: &str,
        member: AgentId,
    ) -> HiveResult<()> {
        let sub = t
            .client
            .queue_subscribe(t.group_subject(group), group.to_string())
            .await
            .map_err(|e| nats_error("queue subscribe", &e))?;
        let task = tokio::spawn(forward(sub, Target::Group(member), self.forward.clone()));
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        super::sync(&t.client).await
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for task in self
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

pub(crate) async fn start(
    t: Arc<Transport>,
    local: Sender,
) -> HiveResult<(Subscriptions, Vec<JoinHandle<()>>)> {
    let (tx, rx) = mpsc::channel::<Incoming>(1024);
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
    let mut subscribed = HashMap::new();
    subscribe_new(&t, &tx, &mut subscribed).await;
    let tasks = vec![
        tokio::spawn(forward(broadcast, Target::Broadcast, tx.clone())),
        tokio::spawn(track_agents(t.clone(), tx.clone(), subscribed)),
        tokio::spawn(deliver_all(t.clone(), rx, decoder, local)),
    ];
    // The first subscriptions must be in place before `connect` returns.
    super::sync(&t.client).await?;
    Ok((
        Subscriptions {
            forward: tx,
            groups: Mutex::new(Vec::new()),
        },
        tasks,
    ))
}

async fn forward(mut sub: async_nats::Subscriber, target: Target, tx: mpsc::Sender<Incoming>) {
    while let Some(message) = sub.next().await {
        if tx.send(Incoming { message, target }).await.is_err() {
            return;
        }
    }
}

/// Subscribes to the subject of every local agent not subscribed yet.
async fn subscribe_new(
    t: &Transport,
    tx: &mpsc::Sender<Incoming>,
    subscribed: &mut HashMap<AgentId, JoinHandle<()>>,
) {
    let now = t.shared.registry.local_agents();
    for agent in &now {
        if subscribed.contains_key(agent) {
            continue;
        }
        match t.client.subscribe(t.agent_subject(agent)).await {
            Ok(sub) => {
                subscribed.insert(
                    *agent,
                    tokio::spawn(forward(sub, Target::Agents, tx.clone())),
                );
            }
            Err(_) => {
                #[cfg(feature = "metrics")]
                metrics::counter!("hive_nats_subscribe_errors_total").increment(1);
            }
        }
    }
    subscribed.retain(|agent, task| {
        let keep = now.contains(agent);
        if !keep {
            task.abort(); // dropping the subscriber unsubscribes
        }
        keep
    });
    let _ = super::sync(&t.client).await;
}

/// Keeps the subscriptions in step with the agents this process hosts.
async fn track_agents(
    t: Arc<Transport>,
    tx: mpsc::Sender<Incoming>,
    mut subscribed: HashMap<AgentId, JoinHandle<()>>,
) {
    loop {
        let changed = t.shared.registry.changed.listen();
        subscribe_new(&t, &tx, &mut subscribed).await;
        changed.await;
    }
}

async fn deliver_all(
    t: Arc<Transport>,
    mut rx: mpsc::Receiver<Incoming>,
    mut decoder: FrameDecoder,
    local: Sender,
) {
    while let Some(Incoming { message, target }) = rx.recv().await {
        let Ok(frame) = decoder.decode(&message.payload) else {
            continue; // counted as rejected; the sender's acknowledgement times out
        };
        let FrameBody::Messages(messages) = frame.body else {
            continue;
        };
        t.counters
            .messages_received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        deliver(&t, &local, messages, target).await;
        local.flush();
        if let Some(reply) = message.reply {
            let _ = t.client.publish(reply, Bytes::new()).await;
        }
    }
}

async fn deliver(t: &Transport, local: &Sender, messages: Vec<Message>, target: Target) {
    for m in messages {
        match (target, m.recipient) {
            (Target::Group(member), _) => {
                if let Err(refused) = local.send_to_async(member, m).await {
                    t.shared
                        .undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
                }
            }
            (Target::Agents, Recipient::Agent(to)) => match t.shared.registry.get(&to) {
                Some(inbox) if !inbox.remote => {
                    if let Err(refused) = local.send_to_async(to, m).await {
                        t.shared
                            .undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
                    }
                }
                _ => t.shared.undeliverable([m], UndeliveredReason::NoRecipient),
            },
            (_, _) => {
                for inbox in t.shared.registry.inboxes() {
                    if inbox.remote || inbox.agent == m.sender {
                        continue;
                    }
                    if let Err(refused) = local.send_to_async(inbox.agent, m.clone()).await {
                        t.shared
                            .undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
                    }
                }
            }
        }
    }
}
