//! The link's writer: control frames (handshake, acknowledgements,
//! announcements, keep-alives) whenever there are any, data frames when the
//! handshake is done and the window has room.
//!
//! Acknowledgements never wait behind data: the writer waits for room in
//! its window and for control records *at the same time*, so two links
//! whose windows are both full still acknowledge each other.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hive_types::{HiveError, HiveResult, Message};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::security::Stream;
use super::state::LinkState;
use crate::transport::{LinkQueue, Unframed};
use crate::wire::{Control, FrameEncoder};
use hive_types::sync::lock;

struct Writer {
    state: Arc<LinkState>,
    socket: WriteHalf<Stream>,
    encoder: FrameEncoder,
    frame: Vec<u8>,
    sequence: u64,
    last_write: Instant,
}

impl Writer {
    async fn controls(&mut self, records: &[Control]) -> HiveResult<()> {
        self.frame.clear();
        self.encoder.encode_control(records, 0, &mut self.frame)?;
        self.socket.write_all(&self.frame).await?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Writes `batch` as frames of at most `frame_bytes` raw bytes. Each
    /// frame is in flight before its first byte is written, so a failure
    /// mid-write reports its messages unknown; what never reached a frame is
    /// reported not sent.
    async fn data(&mut self, batch: &mut Vec<Message>) -> HiveResult<()> {
        while !batch.is_empty() {
            let take = frame_cut(batch, self.state.config.frame_bytes);
            let messages: Vec<Message> = batch.drain(..take).collect();
            self.sequence += 1;
            self.frame.clear();
            let info = match self
                .encoder
                .encode_messages(&messages, self.sequence, &mut self.frame)
            {
                Ok(info) => info,
                Err(e) => {
                    batch.splice(0..0, messages); // reported by the caller's guard
                    return Err(e);
                }
            };
            // Counted as sent once it starts to leave: a frame cut off
            // mid-write is in flight, and reported unknown.
            lock(&self.state.in_flight).push(self.sequence, messages, info.raw_len);
            self.state
                .counters
                .frame_sent(info.records, info.raw_len, info.frame_len);
            self.socket.write_all(&self.frame).await?;
            self.last_write = Instant::now();
        }
        Ok(())
    }

    fn ready(&self) -> bool {
        self.state.ready.load(Ordering::Acquire)
    }

    fn window_full(&self) -> bool {
        lock(&self.state.in_flight).is_full()
    }

    fn keepalive_at(&self) -> Instant {
        self.last_write + self.state.config.idle_timeout / 3
    }
}

/// Drains `rx` into `into` without waiting.
fn gather(first: Control, rx: &mut mpsc::Receiver<Control>, into: &mut Vec<Control>) {
    into.push(first);
    while into.len() < 4096 {
        match rx.try_recv() {
            Ok(more) => into.push(more),
            Err(_) => break,
        }
    }
}

pub(crate) async fn write_loop(
    state: Arc<LinkState>,
    socket: WriteHalf<Stream>,
    mut control: mpsc::Receiver<Control>,
    encoder: FrameEncoder,
) -> HiveResult<()> {
    let queue = state.queue.clone();
    let mut consumer = queue.consumer().await;
    let mut w = Writer {
        state: state.clone(),
        socket,
        encoder,
        frame: Vec::new(),
        sequence: 0,
        last_write: Instant::now(),
    };
    let opening = lock(&state.handshake).opening();
    w.controls(&opening).await?;
    // Taken from the queue, not yet framed: reported not sent if this task
    // stops or is aborted before framing them.
    let mut batch = Unframed::new(
        &state.shared,
        &state.counters,
        Vec::with_capacity(state.config.frame_messages),
    );
    let mut records = Vec::new();
    let mut control_open = true;
    let result: HiveResult<()> = async {
        loop {
            let can_send = w.ready() && !w.window_full();
            tokio::select! {
                biased;
                c = control.recv(), if control_open => match c {
                    Some(c) => {
                        gather(c, &mut control, &mut records);
                        w.controls(&records).await?;
                        records.clear();
                    }
                    None => control_open = false,
                },
                _ = state.progress.notified(), if !can_send => {}
                r = LinkQueue::next(&mut consumer, &mut batch.messages, state.config.frame_messages), if can_send => {
                    if r.is_err() {
                        return Ok(()); // closed and drained: a graceful end
                    }
                    w.data(&mut batch.messages).await?;
                }
                _ = tokio::time::sleep_until(w.keepalive_at()) => {
                    w.controls(&[Control::KeepAlive]).await?;
                }
            }
        }
    }
    .await;
    batch.not_sent();
    drop(batch);
    result?;
    drop(consumer);
    close_gracefully(&state, &mut w, &mut control).await
}

/// The queue is drained: wait (bounded) for the last acknowledgements,
/// still answering the peer's frames, then close the connection.
async fn close_gracefully(
    state: &Arc<LinkState>,
    w: &mut Writer,
    control: &mut mpsc::Receiver<Control>,
) -> HiveResult<()> {
    let deadline = Instant::now() + state.config.close_timeout;
    let mut records = Vec::new();
    let mut control_open = true;
    let outcome = loop {
        if lock(&state.in_flight).is_empty() {
            break Ok(());
        }
        tokio::select! {
            biased;
            c = control.recv(), if control_open => {
                // Closed: the reader ended, no acknowledgement can come.
                let Some(c) = c else {
                    control_open = false;
                    continue;
                };
                gather(c, control, &mut records);
                w.controls(&records).await?;
                records.clear();
            }
            _ = state.progress.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                break Err(HiveError::Timeout {
                    what: "acknowledgements at close",
                    after: state.config.close_timeout,
                });
            }
        }
    };
    let _ = w.socket.shutdown().await;
    outcome
}

/// How many leading messages fit in one frame of at most `bytes` raw bytes
/// (at least one: a larger message travels alone).
fn frame_cut(batch: &[Message], bytes: usize) -> usize {
    let mut total = 0;
    for (i, m) in batch.iter().enumerate() {
        total += crate::wire::message_len(m);
        if total > bytes && i > 0 {
            return i;
        }
    }
    batch.len()
}
