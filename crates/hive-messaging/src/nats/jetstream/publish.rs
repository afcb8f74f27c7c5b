//! Publishing: each frame with a message id, settled by the stream's
//! acknowledgement, sent again with the same id (the stream drops the
//! second copy) when the acknowledgement is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use super::Durable;
use crate::nats::Transport;
use crate::undelivered::UndeliveredReason;

/// What became of one attempt.
enum Attempt {
    Stored {
        duplicate: bool,
    },
    /// The stream answered no (full, no such stream): not stored.
    Refused(UndeliveredReason),
    /// No answer: send it again.
    Lost,
}

type Sent = Result<PublishAckFuture, PublishError>;

/// Hands one publish of the frame to the client.
async fn send(d: &Durable, subject: &str, id: &str, payload: &Bytes) -> Sent {
    let publish = PublishMessage::build()
        .payload(payload.clone())
        .message_id(id);
    d.context.send_publish(subject.to_string(), publish).await
}

/// Waits for the stream's answer to a publish.
async fn answer(sent: Sent) -> Attempt {
    let ack = match sent {
        Ok(ack) => ack.await,
        // Never handed to the connection: too large, or the client closed.
        Err(e) => match e.kind() {
            PublishErrorKind::TimedOut | PublishErrorKind::MaxAckPending => return Attempt::Lost,
            _ => return Attempt::Refused(UndeliveredReason::NotSent),
        },
    };
    match ack {
        Ok(ack) => Attempt::Stored {
            duplicate: ack.duplicate,
        },
        // No answer, or no stream there for now (a leader election, a
        // restart): send it again.
        Err(e) => match e.kind() {
            PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::StreamNotFound
            | PublishErrorKind::MaxAckPending => Attempt::Lost,
            // The stream said no (full, say).
            _ => Attempt::Refused(UndeliveredReason::Refused),
        },
    }
}

/// Publishes frame `sequence` (already in the pending window) and settles
/// it: acknowledged when stored, reported when refused, sent again while
/// the window still holds it (the sweep reports it unknown after
/// `ack_timeout`).
pub(crate) async fn publish(t: &Arc<Transport>, subject: String, sequence: u64, payload: Bytes) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let id = format!("{}-{sequence}", d.publisher);
    // The first send happens here, in the writer, so frames leave in order.
    let started = Instant::now();
    let first = send(d, &subject, &id, &payload).await;
    tokio::spawn(settle(
        t.clone(),
        subject,
        id,
        sequence,
        payload,
        first,
        started,
    ));
}

async fn settle(
    t: Arc<Transport>,
    subject: String,
    id: String,
    sequence: u64,
    payload: Bytes,
    first: Sent,
    mut started: Instant,
) {
    let Some(d) = t.durable.as_ref() else {
        return;
    };
    let mut pause = Duration::from_millis(50);
    let mut sent = first;
    loop {
        match answer(sent).await {
            Attempt::Stored { duplicate } => {
                d.counters.published(duplicate, started.elapsed());
                t.pending
                    .remove(sequence, |f| t.counters.acked(f.messages.len()));
                return;
            }
            Attempt::Refused(reason) => {
                t.pending.remove(sequence, |f| {
                    t.counters.not_sent(f.messages.len());
                    t.shared.undeliverable(f.messages, reason);
                });
                return;
            }
            Attempt::Lost => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                if !t.pending.contains(sequence) {
                    return; // reported unknown by the sweep already
                }
                d.counters.retransmitted();
                started = Instant::now();
                sent = send(d, &subject, &id, &payload).await;
            }
        }
    }
}
