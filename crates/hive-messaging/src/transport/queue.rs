//! A link's write queue and the frames it has in flight.

use std::collections::VecDeque;
use std::sync::Arc;

use hive_types::{AgentId, HiveResult, Message};

use super::Counters;
use crate::batch::FlushReason;
use crate::inbox::Inbox;
use crate::mailbox::Mailbox;
use crate::shared::Shared;
use crate::undelivered::UndeliveredReason;

/// The queue senders fill for a link to another process: a bounded inbox
/// (in messages and bytes) that routes lead to, and its consumer end, which
/// the link's writer drains.
pub(crate) struct LinkQueue {
    pub(crate) shared: Arc<Shared>,
    pub(crate) inbox: Arc<Inbox>,
    mailbox: tokio::sync::Mutex<Mailbox>,
}

impl LinkQueue {
    /// A new queue, reachable under its own id until the link routes
    /// agents to it.
    pub(crate) fn open(shared: &Arc<Shared>, capacity: usize, bytes: usize) -> Arc<LinkQueue> {
        let id = AgentId::random();
        let inbox = Arc::new(Inbox::new_remote(id, capacity.max(1), bytes.max(1)));
        shared.registry.add_route(id, &inbox);
        let mailbox = Mailbox::new(inbox.clone(), shared.clone());
        Arc::new(LinkQueue {
            shared: shared.clone(),
            inbox,
            mailbox: tokio::sync::Mutex::new(mailbox),
        })
    }

    /// The consumer end, for the writer (held for the link's life).
    pub(crate) async fn consumer(&self) -> tokio::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().await
    }

    /// No new messages for this link: its routes go, what senders hold for
    /// it is flushed, and the queue closes (the writer still drains it).
    pub(crate) fn stop_accepting(&self) {
        self.shared.registry.remove_routes_to(&self.inbox);
        for core in self.shared.live_senders() {
            core.flush_all(&self.shared, FlushReason::Close);
        }
        self.inbox.close();
    }

    /// The link ended: `in_flight` (written, never acknowledged) is reported
    /// unknown, what is still queued is reported not sent. Returns both counts.
    pub(crate) async fn finish(
        &self,
        in_flight: Vec<Message>,
        counters: &Counters,
    ) -> (usize, usize) {
        self.stop_accepting();
        let unknown = in_flight.len();
        counters.unknown(unknown);
        self.shared
            .undeliverable(in_flight, UndeliveredReason::Unknown);
        let not_sent = self
            .mailbox
            .lock()
            .await
            .discard(UndeliveredReason::NotSent);
        counters.not_sent(not_sent);
        (unknown, not_sent)
    }

    /// Whether every message accepted for this queue was taken by the
    /// writer and the writer has `finished` (framed, or reported) as many as
    /// it took. Reads the counts in the order that makes a message moving
    /// between them count as not settled.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn is_drained(&self, finished: &std::sync::atomic::AtomicU64) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.inbox.reserved() == 0 && finished.load(SeqCst) == self.inbox.delivered()
    }

    /// Receives the next batch for the writer.
    pub(crate) async fn next(
        consumer: &mut Mailbox,
        buf: &mut Vec<Message>,
        max: usize,
    ) -> HiveResult<usize> {
        consumer.recv_many_async(buf, max).await
    }
}

/// Messages a writer took from its queue and has not yet put in a frame:
/// whenever the writer stops (an error, or its task aborted mid-write),
/// whatever is left is reported not sent.
pub(crate) struct Unframed<'a> {
    shared: &'a Shared,
    counters: &'a Counters,
    pub(crate) messages: Vec<Message>,
}

impl<'a> Unframed<'a> {
    pub(crate) fn new(shared: &'a Shared, counters: &'a Counters, messages: Vec<Message>) -> Self {
        Unframed {
            shared,
            counters,
            messages,
        }
    }

    /// The same guard around other messages.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn with(&self, messages: Vec<Message>) -> Unframed<'a> {
        Unframed::new(self.shared, self.counters, messages)
    }

    /// Reports what is held as not sent now.
    pub(crate) fn not_sent(&mut self) {
        let messages = std::mem::take(&mut self.messages);
        if !messages.is_empty() {
            self.counters.not_sent(messages.len());
            self.shared
                .undeliverable(messages, UndeliveredReason::NotSent);
        }
    }
}

impl Drop for Unframed<'_> {
    fn drop(&mut self) {
        self.not_sent();
    }
}

/// Frames written and not acknowledged, oldest first, bounded in frames and
/// in bytes.
#[derive(Debug)]
#[cfg_attr(not(feature = "tcp"), allow(dead_code))]
pub(crate) struct InFlight {
    frames: VecDeque<(u64, Vec<Message>, usize)>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
}

#[cfg_attr(not(feature = "tcp"), allow(dead_code))]
impl InFlight {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        InFlight {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Whether another frame must wait for acknowledgements.
    pub(crate) fn is_full(&self) -> bool {
        self.frames.len() >= self.max_frames || self.bytes >= self.max_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// A frame is about to be written.
    pub(crate) fn push(&mut self, sequence: u64, messages: Vec<Message>, bytes: usize) {
        self.bytes += bytes;
        self.frames.push_back((sequence, messages, bytes));
    }

    /// The peer delivered every frame up to `sequence`: returns how many
    /// messages that acknowledges.
    pub(crate) fn ack(&mut self, sequence: u64) -> usize {
        let mut n = 0;
        while self.frames.front().is_some_and(|(s, _, _)| *s <= sequence) {
            if let Some((_, messages, bytes)) = self.frames.pop_front() {
                n += messages.len();
                self.bytes -= bytes;
            }
        }
        n
    }

    /// Every message still in flight (the link ended).
    pub(crate) fn drain(&mut self) -> Vec<Message> {
        self.bytes = 0;
        self.frames.drain(..).flat_map(|(_, m, _)| m).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(n: usize) -> Vec<Message> {
        (0..n)
            .map(|_| Message::new(AgentId::nil(), AgentId::nil(), "x"))
            .collect()
    }

    #[test]
    fn in_flight_is_bounded_in_frames_and_bytes_and_acks_cumulatively() {
        let mut f = InFlight::new(3, 1_000);
        f.push(1, messages(2), 100);
        f.push(2, messages(3), 100);
        assert!(!f.is_full());
        f.push(3, messages(1), 900);
        assert!(f.is_full());
        assert_eq!(f.ack(2), 5);
        assert!(!f.is_full());
        assert_eq!(f.drain().len(), 1);
        assert!(f.is_empty());
    }
}
