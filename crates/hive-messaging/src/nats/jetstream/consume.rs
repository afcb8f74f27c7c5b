//! Consuming: a durable pull consumer per hosted agent or joined group,
//! frames acknowledged once their messages were handled, and the dead
//! letters.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::{AckKind, Acker, PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use hive_types::{HiveResult, Outcome, Receipt};
use tokio::sync::oneshot;

use super::{consumer_name, Durable};
use crate::nats::inbound::Forward;
use crate::nats::{nats_error, Transport};
use crate::transport::Target;

/// What a consumer read besides the frame: how to acknowledge it.
pub(crate) struct Arrived {
    acker: Acker,
    deliveries: u32,
    stream_sequence: u64,
    dead_subject: String,
}

/// Whose mail a consumer reads.
#[derive(Debug, Clone)]
pub(crate) enum Consuming {
    /// One agent's subject.
    Agent(hive_types::AgentId),
    /// A queue group's subject: one durable consumer shared by its members.
    Group(String),
}

/// The durable consumer for `whom`, created if it is not there.
pub(crate) async fn consumer_for(
    t: &Transport,
    d: &Durable,
    whom: &Consuming,
) -> HiveResult<PullConsumer> {
    let (name, subject) = match whom {
        Consuming::Agent(id) => (
            consumer_name("agent", &id.to_string()),
            t.js_agent_subject(id),
        ),
        Consuming::Group(g) => (consumer_name("group", g), t.js_group_subject(g)),
    };
    let mut config = d.consumer_config(name.clone(), subject);
    config.inactive_threshold = d.config.max_age;
    d.stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| nats_error("JetStream consumer", &e))
}

/// Reads `consumer` for ever, handing frames on through `forward`; a frame
/// delivered more than `max_deliver` times goes to the dead letters.
pub(crate) async fn run(
    t: Arc<Transport>,
    consumer: PullConsumer,
    whom: Consuming,
    target: Target,
    forward: Forward,
) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let dead_subject = match &whom {
        Consuming::Agent(id) => t.js_dead_subject(&id.to_string()),
        Consuming::Group(g) => t.js_dead_subject(g),
    };
    let batch = d.config.max_ack_pending;
    loop {
        let stream = consumer
            .stream()
            .max_messages_per_batch(batch)
            .messages()
            .await;
        let Ok(mut messages) = stream else {
            t.counters.rejected("consume");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        while let Some(next) = messages.next().await {
            let Ok(m) = next else {
                t.counters.rejected("consume");
                continue;
            };
            let (deliveries, stream_sequence) = m
                .info()
                .map(|i| {
                    (
                        u32::try_from(i.delivered).unwrap_or(u32::MAX),
                        i.stream_sequence,
                    )
                })
                .unwrap_or((1, 0));
            let (message, acker) = m.split();
            let arrived = Arrived {
                acker,
                deliveries,
                stream_sequence,
                dead_subject: dead_subject.clone(),
            };
            if deliveries > d.config.max_deliver {
                dead_letter(d, arrived, message.payload, "max deliveries").await;
                continue;
            }
            if !forward.push(message, target, Some(arrived)).await {
                return;
            }
        }
        // The server ended the pull (consumer gone, connection lost): pull
        // again after a pause.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A receipt for the messages of one received frame: when they are all
/// dropped the frame is acknowledged (or handed back if one failed); until
/// then the consumer is told every `ack_wait / 2` that work goes on.
pub(crate) fn settle_frame(t: &Arc<Transport>, arrived: Arrived) -> Option<Receipt> {
    let d = t.durable.as_ref()?;
    let (tx, rx) = oneshot::channel();
    let deliveries = arrived.deliveries;
    d.counters.received(deliveries);
    tokio::spawn(watch(t.clone(), arrived.acker, rx, deliveries));
    Some(Receipt::new(deliveries, move |outcome| {
        let _ = tx.send(outcome);
    }))
}

async fn watch(t: Arc<Transport>, acker: Acker, mut done: oneshot::Receiver<Outcome>, n: u32) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let every = (d.config.ack_wait / 2).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            outcome = &mut done => {
                let sent = match outcome {
                    Ok(Outcome::Handled) => {
                        d.counters.acknowledged();
                        acker.ack().await
                    }
                    // Failed, or the receipt's sender went without a word:
                    // deliver it again.
                    _ => {
                        d.counters.failed();
                        acker.ack_with(AckKind::Nak(Some(d.config.delay(n)))).await
                    }
                };
                if sent.is_err() {
                    // Not acknowledged: the server redelivers after ack_wait.
                    t.counters.rejected("ack");
                }
                return;
            }
            _ = tokio::time::sleep(every) => {
                let _ = acker.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// Moves a frame to its dead-letter subject (in the stream, so it stays)
/// with why, then ends its deliveries. If that publish fails the frame is
/// handed back to try again later.
pub(crate) async fn dead_letter(d: &Durable, arrived: Arrived, frame: Bytes, reason: &str) {
    let mut headers = HeaderMap::new();
    headers.insert("Hive-Reason", reason);
    headers.insert("Hive-Deliveries", arrived.deliveries.to_string().as_str());
    headers.insert(
        "Hive-Stream-Sequence",
        arrived.stream_sequence.to_string().as_str(),
    );
    let publish = PublishMessage::build()
        .payload(frame)
        .headers(headers)
        .message_id(format!("dead-{}", arrived.stream_sequence));
    let stored = match d.context.send_publish(arrived.dead_subject, publish).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    let done = match stored {
        true => {
            d.counters.dead_lettered();
            arrived.acker.ack_with(AckKind::Term).await
        }
        false => {
            let delay = d.config.delay(arrived.deliveries);
            arrived.acker.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    let _ = done;
}
