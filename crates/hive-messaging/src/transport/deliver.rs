//! Received messages to local mailboxes: duplicates dropped, a bounded
//! amount of work per turn so one peer cannot stall the others.

use hive_types::{AgentId, Message, Recipient};

use super::Counters;
use crate::sender::Sender;
use crate::shared::Shared;
use crate::undelivered::UndeliveredReason;

/// Where received messages go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// To each message's recipient (an agent of this process).
    Agents,
    /// To this member (a queue group's local agent).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Member(AgentId),
    /// To every local agent but the sender.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Broadcast,
}

/// Hands `messages` to local mailboxes, waiting for room (backpressure on
/// the peer), yielding every `per_turn` messages. What no local agent can
/// take is reported (`NoRecipient`); a message whose id was taken before is
/// dropped and counted as a duplicate (unless a durable transport delivers
/// it again on purpose).
pub(crate) async fn deliver(
    shared: &Shared,
    local: &Sender,
    messages: Vec<Message>,
    target: Target,
    per_turn: usize,
    counters: &Counters,
) {
    let (mut handed, mut duplicates) = (0usize, 0usize);
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 && i % per_turn.max(1) == 0 {
            tokio::task::yield_now().await;
        }
        // A durable transport's redelivery is meant: the frame failed, or
        // its acknowledgement was lost. Only first deliveries are checked.
        let redelivered = m.receipt.as_ref().is_some_and(|r| r.redelivered());
        if !redelivered && !shared.first_time(&m) {
            duplicates += 1;
            continue;
        }
        handed += 1;
        match (target, m.recipient) {
            (Target::Member(member), _) => to_local(shared, local, member, m).await,
            (Target::Agents, Recipient::Agent(to)) => to_local(shared, local, to, m).await,
            (_, _) => {
                for inbox in shared.registry.local_inboxes() {
                    if inbox.agent != m.sender {
                        to_local(shared, local, inbox.agent, m.clone()).await;
                    }
                }
            }
        }
    }
    local.flush();
    counters.received(handed, duplicates);
}

async fn to_local(shared: &Shared, local: &Sender, to: AgentId, m: Message) {
    if to == shared.reply_address {
        shared.to_reply_address(m);
        return;
    }
    if !shared.registry.is_local(&to) {
        shared.undeliverable([m], UndeliveredReason::NoRecipient);
        return;
    }
    if let Err(refused) = local.send_to_async(to, m).await {
        shared.undeliverable([refused.into_inner()], UndeliveredReason::NoRecipient);
    }
}
