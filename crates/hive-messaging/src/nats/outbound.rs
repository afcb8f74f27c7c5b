//! Outbound: frames per subject, published with a reply subject while the
//! client is connected and the window has room, and the acknowledgements
//! (or "no responders", or time) that settle them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use bytes::Bytes;
use futures::StreamExt;
use hive_types::{HiveResult, Message, MessageKind, Recipient};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::adapt::Adaptive;
use super::{nats_error, Transport};
use crate::transport::{LinkQueue, Unframed};
use crate::undelivered::UndeliveredReason;
use crate::wire::FrameEncoder;

use hive_types::sync::lock;

/// A frame published and not yet settled.
pub(crate) struct PendingFrame {
    sent: Instant,
    pub(crate) messages: Vec<Message>,
    bytes: usize,
}

#[derive(Default)]
struct Window {
    frames: HashMap<u64, PendingFrame>,
    bytes: usize,
}

/// Frames waiting for their acknowledgement, bounded in frames and bytes.
pub(crate) struct Pending {
    window: Mutex<Window>,
    max_frames: usize,
    max_bytes: usize,
    /// A frame settled: the writer may have room again.
    settled: Notify,
}

impl Pending {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Pending {
            window: Mutex::new(Window::default()),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
            settled: Notify::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.window).frames.len()
    }

    /// Whether frame `sequence` still waits.
    #[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
    pub(crate) fn contains(&self, sequence: u64) -> bool {
        lock(&self.window).frames.contains_key(&sequence)
    }

    fn is_full(&self) -> bool {
        let w = lock(&self.window);
        w.frames.len() >= self.max_frames || w.bytes >= self.max_bytes
    }

    fn insert(&self, sequence: u64, messages: Vec<Message>, bytes: usize) {
        let mut w = lock(&self.window);
        w.bytes += bytes;
        w.frames.insert(
            sequence,
            PendingFrame {
                sent: Instant::now(),
                messages,
                bytes,
            },
        );
    }

    /// Removes frame `sequence` and settles it with `settle` before the
    /// window shows it gone (so `NatsTransport::settle` never returns
    /// before its counts do). False if it was settled already.
    pub(crate) fn remove(&self, sequence: u64, settle: impl FnOnce(PendingFrame)) -> bool {
        {
            let mut w = lock(&self.window);
            let Some(frame) = w.frames.remove(&sequence) else {
                return false;
            };
            w.bytes -= frame.bytes;
            settle(frame);
        }
        self.settled.notify_one();
        true
    }

    /// Removes and settles every frame sent longer than `after` ago.
    fn overdue(&self, after: Duration, mut settle: impl FnMut(PendingFrame)) {
        let mut any = false;
        {
            let mut w = lock(&self.window);
            let late: Vec<u64> = w
                .frames
                .iter()
                .filter(|(_, f)| f.sent.elapsed() > after)
                .map(|(s, _)| *s)
                .collect();
            for s in late {
                if let Some(frame) = w.frames.remove(&s) {
                    w.bytes -= frame.bytes;
                    settle(frame);
                    any = true;
                }
            }
        }
        if any {
            self.settled.notify_one();
        }
    }

    /// Every message still waiting (the transport is closing).
    pub(crate) fn drain(&self) -> Vec<Message> {
        let mut w = lock(&self.window);
        w.bytes = 0;
        w.frames.drain().flat_map(|(_, f)| f.messages).collect()
    }
}

pub(crate) async fn start(t: Arc<Transport>) -> HiveResult<Vec<JoinHandle<()>>> {
    let acks = t
        .client
        .subscribe(format!("{}.*", t.ack_prefix))
        .await
        .map_err(|e| nats_error("subscribe", &e))?;
    let encoder = FrameEncoder::new(t.config.encoder.clone())?;
    Ok(vec![
        tokio::spawn(settle_acks(t.clone(), acks)),
        tokio::spawn(sweep(t.clone())),
        tokio::spawn(write(t, encoder)),
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
        let nobody = reply.status == Some(async_nats::StatusCode::NO_RESPONDERS);
        // False when it was reported after a timeout already.
        t.pending.remove(seq, |frame| {
            if nobody {
                // Nobody subscribes: known not delivered.
                t.counters.not_sent(frame.messages.len());
                t.shared
                    .undeliverable(frame.messages, UndeliveredReason::NoRecipient);
            } else {
                t.counters.acked(frame.messages.len());
            }
        });
    }
}

/// Reports frames whose acknowledgement is overdue: their fate is unknown.
async fn sweep(t: Arc<Transport>) {
    let every = (t.config.ack_timeout / 10).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        t.pending.overdue(t.config.ack_timeout, |f| {
            t.counters.unknown(f.messages.len());
            t.shared
                .undeliverable(f.messages, UndeliveredReason::Unknown);
        });
    }
}

/// Subject of a message, and whether its frames are acknowledged.
fn route(t: &Transport, m: &Message) -> (String, bool) {
    match m.recipient {
        Recipient::Broadcast => (t.broadcast_subject(), false),
        // Replies stay on core NATS: their asker waits with a deadline.
        Recipient::Agent(id) => match (
            lock(&t.groups).get(&id),
            t.is_durable() && m.kind != MessageKind::Response,
        ) {
            (Some(name), false) => (t.group_subject(name), true),
            (None, false) => (t.agent_subject(&id), true),
            (Some(name), true) => (t.js_group_subject(name), true),
            (None, true) => (t.js_agent_subject(&id), true),
        },
    }
}

/// Waits until the client is connected and the window has room (while
/// not, nothing is taken from the queue: it fills, and senders wait).
async fn wait_until_open(t: &Transport) {
    loop {
        let settled = t.pending.settled.notified();
        let connected = t.client.connection_state() == State::Connected;
        if connected && !t.pending.is_full() {
            return;
        }
        if connected {
            settled.await;
        } else {
            // async-nats has no state-change future: look again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn write(t: Arc<Transport>, mut encoder: FrameEncoder) {
    let mut consumer = t.queue.consumer().await;
    // Taken from the queue, not yet published: reported not sent if this
    // task is aborted first (a close whose deadline passed).
    let mut batch = Unframed::new(
        &t.shared,
        &t.counters,
        Vec::with_capacity(t.config.frame_messages),
    );
    let mut sequence = 0u64;
    let mut adapt = Adaptive::new(
        t.config.encoder.codec,
        t.config.encoder.level,
        t.config.fastest_level,
    );
    loop {
        let waited = Instant::now();
        wait_until_open(&t).await;
        let waiting = waited.elapsed();
        let max = t.config.frame_messages;
        if LinkQueue::next(&mut consumer, &mut batch.messages, max)
            .await
            .is_err()
        {
            return;
        }
        let backlog = batch.messages.len() >= max;
        // Group by subject, keeping each subject's messages in order.
        let mut by_subject: Vec<(String, bool, Unframed<'_>)> = Vec::new();
        let taken = batch.messages.len() as u64;
        for m in std::mem::take(&mut batch.messages) {
            let (subject, ack) = route(&t, &m);
            match by_subject.iter_mut().find(|(s, _, _)| *s == subject) {
                Some((_, _, held)) => held.messages.push(m),
                None => by_subject.push((subject, ack, batch.with(vec![m]))),
            }
        }
        // Time spent compressing, and the rest of publishing: waiting for
        // the connection.
        let mut encoding = Duration::ZERO;
        let publishing = Instant::now();
        for (subject, ack, messages) in by_subject {
            let out = (&mut encoder, &mut encoding);
            publish(&t, out, &subject, ack, messages, &mut sequence).await;
        }
        t.finished.fetch_add(taken, Ordering::SeqCst);
        let sending = waiting + publishing.elapsed().saturating_sub(encoding);
        let level = adapt.next(encoding, sending, backlog);
        if level != encoder.level() && encoder.set_level(level).is_ok() {
            #[cfg(feature = "metrics")]
            metrics::gauge!("hive_transport_compression_level", "transport" => "nats")
                .set(f64::from(level));
        }
    }
}

/// Messages that never left: counted and reported.
fn not_sent(t: &Transport, messages: Vec<Message>) {
    t.counters.not_sent(messages.len());
    t.shared.undeliverable(messages, UndeliveredReason::NotSent);
}

/// Room left in a NATS message for a JetStream publish's headers.
const HEADER_ROOM: usize = 256;

/// Publishes `messages` as frames of at most `max_payload` bytes (halving
/// the batch until it fits).
async fn publish(
    t: &Arc<Transport>,
    (encoder, encoding): (&mut FrameEncoder, &mut Duration),
    subject: &str,
    ack: bool,
    messages: Unframed<'_>,
    sequence: &mut u64,
) {
    let mut chunks = VecDeque::from([messages]);
    let mut frame = Vec::new();
    while let Some(mut chunk) = chunks.pop_front() {
        *sequence += 1;
        frame.clear();
        let started = Instant::now();
        let encoded = encoder.encode_messages(&chunk.messages, *sequence, &mut frame);
        *encoding += started.elapsed();
        let Ok(info) = encoded else {
            chunk.not_sent();
            continue;
        };
        // A JetStream publish adds a message id header.
        let headers = if t.is_durable() { HEADER_ROOM } else { 0 };
        let max_payload = t
            .client
            .server_info()
            .max_payload
            .saturating_sub(headers)
            .max(1);
        if frame.len() > max_payload {
            if chunk.messages.len() == 1 {
                chunk.not_sent(); // one message larger than the server accepts
            } else {
                let half = chunk.messages.len() / 2;
                let rest = chunk.messages.split_off(half);
                let second = chunk.with(rest);
                chunks.push_front(second);
                chunks.push_front(chunk);
            }
            continue;
        }
        let chunk_messages = std::mem::take(&mut chunk.messages);
        let n = chunk_messages.len();
        let payload = Bytes::copy_from_slice(&frame);
        // The client's own queue blocks while it is disconnected; give up
        // after the ack timeout (the command was then not queued).
        let within = t.config.ack_timeout;
        #[cfg(feature = "jetstream")]
        if ack && t.is_durable() {
            t.pending.insert(*sequence, chunk_messages, info.raw_len);
            super::jetstream::publish(t, subject.to_string(), *sequence, payload).await;
            t.counters.frame_sent(n, info.raw_len, info.frame_len);
            continue;
        }
        let published = if ack {
            t.pending.insert(*sequence, chunk_messages, info.raw_len);
            let reply = format!("{}.{}", t.ack_prefix, *sequence);
            let r = tokio::time::timeout(
                within,
                t.client
                    .publish_with_reply(subject.to_string(), reply, payload),
            )
            .await;
            let ok = matches!(r, Ok(Ok(())));
            if !ok {
                t.pending.remove(*sequence, |f| not_sent(t, f.messages));
            }
            ok
        } else {
            let r =
                tokio::time::timeout(within, t.client.publish(subject.to_string(), payload)).await;
            let ok = matches!(r, Ok(Ok(())));
            if !ok {
                not_sent(t, chunk_messages);
            }
            ok
        };
        if published {
            t.counters.frame_sent(n, info.raw_len, info.frame_len);
        } else {
            t.counters.rejected("publish");
        }
    }
}
