//! The link's reader: frames from the peer, checked against every limit,
//! the handshake first, then control records and messages for local
//! agents, acknowledged once delivered.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hive_types::{FrameError, HiveError, HiveResult};
use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::sync::mpsc;

use super::security::{timeout, Stream};
use super::state::LinkState;
use crate::transport::{deliver, Target};
use crate::wire::{Control, DecodedFrame, FrameBody, FrameDecoder, HEADER_LEN};
use crate::Sender;
use hive_types::sync::lock;

/// Bytes each link may buffer for a frame before it draws on the server's
/// shared budget for frames still arriving.
const OWN_BUFFER: usize = 64 * 1024;

/// A limit the peer hit: counted, and the link closes.
fn limit(state: &LinkState, what: &'static str, value: u64, max: u64) -> HiveError {
    state.counters.rejected(what);
    HiveError::LimitExceeded {
        limit: what,
        value,
        max,
    }
}

/// Memory drawn from the shared budget for the frame being read.
struct Drawn<'a> {
    state: &'a LinkState,
    bytes: usize,
}

impl Drawn<'_> {
    /// Makes sure `need` bytes of buffer are covered.
    fn cover(&mut self, need: usize) -> HiveResult<()> {
        let want = need.saturating_sub(OWN_BUFFER);
        if want > self.bytes {
            if !self.state.budget.take(want - self.bytes) {
                return Err(limit(
                    self.state,
                    "memory for frames still arriving",
                    want as u64,
                    self.state.config.max_partial_bytes as u64,
                ));
            }
            self.bytes = want;
        }
        Ok(())
    }

    fn release(&mut self) {
        self.state.budget.give(self.bytes);
        self.bytes = 0;
    }
}

impl Drop for Drawn<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

pub(crate) async fn read_loop(
    state: Arc<LinkState>,
    mut socket: ReadHalf<Stream>,
    mut decoder: FrameDecoder,
    local: Sender,
    control: mpsc::Sender<Control>,
) -> HiveResult<()> {
    let started = tokio::time::Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(OWN_BUFFER);
    let mut drawn = Drawn {
        state: &state,
        bytes: 0,
    };
    loop {
        let need = decoder.frame_len(&buf).inspect_err(|_| {
            state.counters.rejected("frame");
        })?;
        if let Some(len) = need {
            drawn.cover(len)?;
            if buf.len() >= len {
                let decoded = decoder.decode(buf.get(..len).unwrap_or(&[]));
                buf.drain(..len);
                drawn.release();
                if buf.capacity() > 2 * OWN_BUFFER && buf.len() < OWN_BUFFER {
                    buf.shrink_to(OWN_BUFFER);
                }
                let decoded = decoded.inspect_err(|_| state.counters.rejected("frame"))?;
                state.counters.bytes_in(len);
                if !on_frame(&state, decoded, &local, &control).await? {
                    return Ok(());
                }
                continue;
            }
        }
        read_more(&state, &mut socket, &mut buf, need, started).await?;
    }
}

/// One whole frame from the peer; `false` once the link's writer is gone.
async fn on_frame(
    state: &LinkState,
    frame: DecodedFrame,
    local: &Sender,
    control: &mpsc::Sender<Control>,
) -> HiveResult<bool> {
    match frame.body {
        FrameBody::Control(records) => {
            on_control(state, records, control).await?;
            Ok(true)
        }
        FrameBody::Messages(messages) => {
            if !state.ready.load(Ordering::Acquire) {
                state.counters.rejected("data before the handshake");
                return Err(HiveError::Io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the peer sent data before completing the handshake",
                )));
            }
            let per_turn = state.config.messages_per_turn;
            deliver(
                &state.shared,
                local,
                messages,
                Target::Agents,
                per_turn,
                &state.counters,
            )
            .await;
            Ok(control.send(Control::Ack(frame.sequence)).await.is_ok())
        }
    }
}

/// Reads what the peer sent next into `buf`: a frame that has begun must
/// arrive within its timeout, a silent link within the idle (or
/// handshake) timeout.
async fn read_more(
    state: &LinkState,
    socket: &mut ReadHalf<Stream>,
    buf: &mut Vec<u8>,
    need: Option<usize>,
    started: tokio::time::Instant,
) -> HiveResult<()> {
    let (what, wait) = if !state.ready.load(Ordering::Acquire) {
        let left = state
            .config
            .handshake_timeout
            .saturating_sub(started.elapsed());
        ("link handshake", left)
    } else if buf.is_empty() {
        ("idle link", state.config.idle_timeout)
    } else {
        ("frame arrival", state.config.frame_timeout)
    };
    let want = need
        .unwrap_or(HEADER_LEN)
        .saturating_sub(buf.len())
        .clamp(1, OWN_BUFFER);
    buf.reserve(want);
    let read = tokio::time::timeout(wait.max(Duration::from_millis(1)), socket.read_buf(buf))
        .await
        .map_err(|_| {
            state.counters.rejected("timeout");
            timeout(what, wait)
        })??;
    if read > 0 {
        return Ok(());
    }
    Err(if buf.is_empty() {
        HiveError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "peer closed the connection",
        ))
    } else {
        HiveError::InvalidFrame(FrameError::Truncated {
            needed: need.unwrap_or(HEADER_LEN) as u64,
            available: buf.len() as u64,
        })
    })
}

async fn on_control(
    state: &LinkState,
    records: Vec<Control>,
    control: &mpsc::Sender<Control>,
) -> HiveResult<()> {
    // The link becomes ready only after the whole frame that completes the
    // handshake was read: a plaintext side that is then asked for a token
    // (a nonce in the same frame) fails instead of counting as linked.
    let was_ready = state.ready.load(Ordering::Acquire);
    let mut done = was_ready;
    for c in records {
        if !done {
            let proof = {
                let mut handshake = lock(&state.handshake);
                let proof = handshake.on_record(c).inspect_err(|_| {
                    state.counters.rejected("handshake");
                })?;
                done = handshake.is_done();
                proof
            };
            if let Some(p) = proof {
                if control.send(p).await.is_err() {
                    return Ok(());
                }
            }
            continue;
        }
        match c {
            Control::Hosts(agent) => {
                let mut remote = lock(&state.remote_agents);
                if remote.len() >= state.config.max_routes {
                    return Err(limit(
                        state,
                        "routes per link",
                        remote.len() as u64 + 1,
                        state.config.max_routes as u64,
                    ));
                }
                if !state.closing.load(Ordering::SeqCst)
                    && state.shared.registry.add_route(agent, &state.queue.inbox)
                {
                    remote.insert(agent);
                }
            }
            Control::Leaves(agent) => {
                state
                    .shared
                    .registry
                    .remove_route(&agent, &state.queue.inbox);
                lock(&state.remote_agents).remove(&agent);
            }
            Control::Ack(sequence) => {
                let n = lock(&state.in_flight).ack(sequence);
                state.counters.acked(n);
                state.progress.notify_one();
            }
            Control::KeepAlive => {}
            handshake => {
                // The handshake says why (a token asked for, a second hello).
                state.counters.rejected("handshake");
                let said = lock(&state.handshake).on_record(handshake).err();
                return Err(said.unwrap_or_else(|| {
                    HiveError::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a handshake record after the handshake",
                    ))
                }));
            }
        }
    }
    if done && !was_ready {
        state.ready.store(true, Ordering::Release);
        state.progress.notify_one();
        state.ready_changed.notify_waiters();
    }
    Ok(())
}
