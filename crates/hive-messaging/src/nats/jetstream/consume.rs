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
use hive_types::{HiveError, HiveResult, Outcome, Receipt, ReceiptGuard};
use tokio::sync::oneshot;

use super::{consumer_name, Durable};
use crate::nats::inbound::Forward;
use crate::nats::{nats_error, Transport};
use crate::transport::Target;

/// Whose mail a consumer reads.
#[derive(Debug, Clone)]
pub(crate) enum Consuming {
    /// One agent's subject.
    Agent(hive_types::AgentId),
    /// A queue group's subject: one durable consumer shared by its members.
    Group(String),
}

/// The durable consumer for `whom`, created if it is not there; one that
/// is there must have the configured subject and limits.
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
    let wanted = d.consumer_config(name.clone(), subject);
    let mut consumer: PullConsumer = d
        .stream
        .get_or_create_consumer(&name, wanted.clone())
        .await
        .map_err(|e| nats_error("JetStream consumer", &e))?;
    let have = &consumer
        .info()
        .await
        .map_err(|e| nats_error("JetStream consumer info", &e))?
        .config;
    if have.filter_subject != wanted.filter_subject
        || have.ack_wait != wanted.ack_wait
        || have.max_deliver != wanted.max_deliver
        || have.max_ack_pending != wanted.max_ack_pending
    {
        return Err(HiveError::config(
            "durable",
            "a consumer of this name exists with another subject, ack_wait, \
             max_deliver or max_ack_pending: delete it, or start with the settings it \
             was made with",
        ));
    }
    Ok(consumer)
}

/// Reads the mail of `whom` for ever (creating its consumer, again after a
/// failure), handing frames on through `forward` with a receipt whose
/// watch starts at once; a frame delivered more than `max_deliver` times
/// goes to the dead letters instead.
pub(crate) async fn run(t: Arc<Transport>, whom: Consuming, target: Target, forward: Forward) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let consumer = loop {
        match consumer_for(&t, d, &whom).await {
            Ok(c) => break c,
            Err(_) => {
                t.counters.rejected("consumer");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let dead_subject = match &whom {
        Consuming::Agent(id) => t.js_dead_subject(&id.to_string()),
        Consuming::Group(g) => t.js_dead_subject(g),
    };
    let batch = d.config.max_ack_pending;
    // Pulls expire and the server sends heartbeats, so a pull lost with a
    // server (or sent before the consumer's leader was elected) is noticed
    // and sent again within about an `ack_wait`.
    let expires = d
        .config
        .ack_wait
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let stream = consumer
            .stream()
            .max_messages_per_batch(batch)
            .expires(expires)
            .heartbeat(expires / 4)
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
            if deliveries > d.config.max_deliver {
                let dead = Dead {
                    subject: dead_subject.clone(),
                    deliveries,
                    stream_sequence,
                };
                dead_letter(&t, d, acker, dead, message.payload).await;
                continue;
            }
            let guard = ReceiptGuard::new(Some(watch_frame(&t, d, acker, deliveries)));
            if !forward.push(message, target, Some(guard)).await {
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
fn watch_frame(t: &Arc<Transport>, d: &Durable, acker: Acker, deliveries: u32) -> Receipt {
    let (tx, rx) = oneshot::channel();
    d.counters.received(deliveries);
    tokio::spawn(watch(t.clone(), acker, rx, deliveries));
    Receipt::new(deliveries, move |outcome| {
        let _ = tx.send(outcome);
    })
}

async fn watch(t: Arc<Transport>, acker: Acker, mut done: oneshot::Receiver<Outcome>, n: u32) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let every = (d.config.ack_wait / 2).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            outcome = &mut done => {
                let handled = matches!(outcome, Ok(Outcome::Handled));
                // Failed, or the receipt went without a word: again.
                let sent = match handled {
                    true => acker.ack().await,
                    false => acker.ack_with(AckKind::Nak(Some(d.config.delay(n)))).await,
                };
                match (sent.is_ok(), handled) {
                    (true, true) => d.counters.acknowledged(),
                    (true, false) => d.counters.failed(),
                    // Not sent: the server delivers it again after ack_wait.
                    (false, _) => {
                        d.counters.unsettled();
                        t.counters.rejected("ack");
                    }
                }
                return;
            }
            _ = tokio::time::sleep(every) => {
                let _ = acker.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// Where a frame goes after its last delivery, and why.
struct Dead {
    subject: String,
    deliveries: u32,
    stream_sequence: u64,
}

/// Moves a frame to its dead-letter subject (in the stream, so it stays)
/// with why, then ends its deliveries. If that publish fails the frame is
/// handed back and tried again after the backoff (the consumer delivers
/// without limit; the limit is kept here).
async fn dead_letter(t: &Transport, d: &Durable, acker: Acker, dead: Dead, frame: Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert("Hive-Reason", "max deliveries");
    headers.insert("Hive-Deliveries", dead.deliveries.to_string().as_str());
    headers.insert(
        "Hive-Stream-Sequence",
        dead.stream_sequence.to_string().as_str(),
    );
    let publish = PublishMessage::build()
        .payload(frame)
        .headers(headers)
        .message_id(format!("dead-{}", dead.stream_sequence));
    let stored = match d.context.send_publish(dead.subject, publish).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    let sent = match stored {
        true => {
            d.counters.dead_lettered();
            acker.ack_with(AckKind::Term).await
        }
        false => {
            t.counters.rejected("dead letter");
            let delay = d.config.delay(dead.deliveries);
            acker.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if sent.is_err() {
        t.counters.rejected("ack");
    }
}
