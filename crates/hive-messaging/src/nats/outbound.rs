//! Outbound: frames per subject, published with a reply subject, and the
//! acknowledgements (or "no responders" and timeouts) that settle them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hive_types::{HiveResult, Message, Recipient};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::{nats_error, Transport};
use crate::mailbox::Mailbox;
use crate::wire::FrameEncoder;

/// A frame published and not yet settled.
pub(crate) struct PendingFrame {
    sent: Instant,
    messages: Vec<Message>,
    _permit: OwnedSemaphorePermit,
}

/// Frames waiting for their acknowledgement.
pub(crate) fn pending(t: &Transport) -> usize {
    t.pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

/// Reports every pending frame (the transport is closing).
pub(crate) fn report_pending(t: &Transport) {
    let frames: Vec<PendingFrame> = t
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
        .map(|(_, f)| f)
        .collect();
    for f in frames {
        t.report(f.messages);
    }
}

pub(crate) async fn start(
    t: Arc<Transport>,
    outbox: Mailbox,
    reconnects: Arc<AtomicU64>,
) -> HiveResult<Vec<JoinHandle<()>>> {
    let acks = t
        .client
        .subscribe(format!("{}.*", t.ack_prefix))
        .await
        .map_err(|e| nats_error("subscribe", &e))?;
    let encoder = FrameEncoder::new(t.config.encoder.clone())?;
    Ok(vec![
        tokio::spawn(settle_acks(t.clone(), acks)),
        tokio::spawn(sweep(t.clone(), reconnects)),
        tokio::spawn(write(t, outbox, encoder)),
    ])
}

/// Acknowledgements and "no responders" statuses arrive on `<prefix>.<seq>`.
async fn settle_acks(t: Arc<Transport>, mut acks: async_nats::Subscriber) {
    while let Some(reply) = acks.next().await {
        let Some(seq) = reply
            .subject
            .rsplit('.')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let Some(frame) = t
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&seq)
        else {
            continue; // already reported after a timeout
        };
        if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            t.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("hive_nats_publish_errors_total", "reason" => "no_responders")
                .increment(1);
            t.report(frame.messages);
        } else {
            t.counters
                .messages_acked
                .fetch_add(frame.messages.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Reports frames whose acknowledgement is overdue; mirrors reconnects.
async fn sweep(t: Arc<Transport>, reconnects: Arc<AtomicU64>) {
    let every = (t.config.ack_timeout / 10).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        // The first Connected event is the initial connection.
        let r = reconnects.load(Ordering::Relaxed).saturating_sub(1);
        t.counters.reconnects.store(r, Ordering::Relaxed);
        let overdue: Vec<PendingFrame> = {
            let mut pending = t.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let late: Vec<u64> = pending
                .iter()
                .filter(|(_, f)| f.sent.elapsed() > t.config.ack_timeout)
                .map(|(s, _)| *s)
                .collect();
            late.into_iter()
                .filter_map(|s| pending.remove(&s))
                .collect()
        };
        for f in overdue {
            t.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("hive_nats_publish_errors_total", "reason" => "ack_timeout")
                .increment(1);
            t.report(f.messages);
        }
    }
}

/// Subject of a message, and whether its frames are acknowledged.
fn route(t: &Transport, m: &Message) -> (String, bool) {
    match m.recipient {
        Recipient::Broadcast => (t.broadcast_subject(), false),
        Recipient::Agent(id) => {
            let groups = t.groups.lock().unwrap_or_else(PoisonError::into_inner);
            match groups.get(&id) {
                Some(name) => (t.group_subject(name), true),
                None => (t.agent_subject(&id), true),
            }
        }
    }
}

async fn write(t: Arc<Transport>, mut outbox: Mailbox, mut encoder: FrameEncoder) {
    let mut batch = Vec::with_capacity(t.config.frame_messages);
    let mut sequence = 0u64;
    loop {
        if outbox
            .recv_many_async(&mut batch, t.config.frame_messages)
            .await
            .is_err()
        {
            return;
        }
        // Group by subject, keeping each subject's messages in order.
        let mut by_subject: Vec<(String, bool, Vec<Message>)> = Vec::new();
        for m in batch.drain(..) {
            let (subject, ack) = route(&t, &m);
            match by_subject.iter_mut().find(|(s, _, _)| *s == subject) {
                Some((_, _, ms)) => ms.push(m),
                None => by_subject.push((subject, ack, vec![m])),
            }
        }
        for (subject, ack, messages) in by_subject {
            publish(&t, &mut encoder, &subject, ack, messages, &mut sequence).await;
        }
    }
}

/// Publishes `messages` as frames of at most `max_payload` bytes (halving
/// the batch until it fits).
async fn publish(
    t: &Arc<Transport>,
    encoder: &mut FrameEncoder,
    subject: &str,
    ack: bool,
    messages: Vec<Message>,
    sequence: &mut u64,
) {
    let class = if !ack {
        "broadcast"
    } else if subject.contains(".group.") {
        "group"
    } else {
        "agent"
    };
    let mut chunks = VecDeque::from([messages]);
    let mut frame = Vec::new();
    while let Some(chunk) = chunks.pop_front() {
        *sequence += 1;
        frame.clear();
        let info = match encoder.encode_messages(&chunk, *sequence, &mut frame) {
            Ok(info) => info,
            Err(_) => {
                t.report(chunk);
                continue;
            }
        };
        let max_payload = t.client.server_info().max_payload.max(1);
        if frame.len() > max_payload {
            if chunk.len() == 1 {
                t.report(chunk); // one message larger than the server accepts
            } else {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                chunks.push_front(second);
                chunks.push_front(first);
            }
            continue;
        }
        let n = chunk.len() as u64;
        let payload = Bytes::copy_from_slice(&frame);
        let result = if ack {
            let Ok(permit) = t.window.clone().acquire_owned().await else {
                return;
            };
            t.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    *sequence,
                    PendingFrame {
                        sent: Instant::now(),
                        messages: chunk,
                        _permit: permit,
                    },
                );
            let reply = format!("{}.{}", t.ack_prefix, *sequence);
            let r = t
                .client
                .publish_with_reply(subject.to_string(), reply, payload)
                .await;
            if r.is_err() {
                let lost = t
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(sequence);
                if let Some(f) = lost {
                    t.report(f.messages);
                }
            }
            r
        } else {
            let r = t.client.publish(subject.to_string(), payload).await;
            if r.is_err() {
                t.report(chunk);
            }
            r
        };
        if result.is_err() {
            t.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("hive_nats_publish_errors_total", "reason" => "publish").increment(1);
            continue;
        }
        let c = &t.counters;
        c.frames_sent.fetch_add(1, Ordering::Relaxed);
        c.messages_sent.fetch_add(n, Ordering::Relaxed);
        c.bytes_sent
            .fetch_add(info.frame_len as u64, Ordering::Relaxed);
        c.raw_bytes_sent
            .fetch_add(info.raw_len as u64, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("hive_nats_messages_total", "class" => class).increment(n);
            metrics::counter!("hive_nats_bytes_total", "class" => class)
                .increment(info.frame_len as u64);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = class;
    }
}
