//! Request and reply on a [`Sender`]: ask one agent and wait for its
//! answer, with a deadline; the table of waiting requests is `requests`.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use hive_types::{AgentId, HiveError, HiveResult, Message, MessageId, Recipient};

use crate::requests::{Outcome, ReplySlot};
use crate::sender::Sender;
use crate::shared::Shared;
use crate::undelivered::UndeliveredReason;
use crate::wait::{run_blocking, Await, BlockUntil};

/// A registered request: hands its reply over, or gives up on drop (a reply
/// arriving later is counted as late).
struct PendingReply<'a> {
    id: MessageId,
    slot: Arc<ReplySlot>,
    shared: &'a Shared,
    timeout: Duration,
    settled: bool,
}

impl<'a> PendingReply<'a> {
    fn register(shared: &'a Shared, request: &Message, timeout: Duration) -> HiveResult<Self> {
        let deadline = shared
            .nanos(Instant::now())
            .saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        let slot = shared.requests.register(request.id, deadline)?;
        shared.flusher.schedule(deadline);
        Ok(PendingReply {
            id: request.id,
            slot,
            shared,
            timeout,
            settled: false,
        })
    }

    fn outcome(&mut self, outcome: Option<Outcome>) -> HiveResult<Message> {
        match outcome {
            Some(Outcome::Reply(reply)) => {
                self.settled = true;
                Ok(reply)
            }
            // The table already buried a timed-out request.
            Some(Outcome::TimedOut) => {
                self.settled = true;
                Err(reply_timeout(self.timeout))
            }
            None => Err(reply_timeout(self.timeout)),
        }
    }
}

impl Drop for PendingReply<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Some(late) = self.shared.requests.give_up(self.id, &self.slot) {
            self.shared
                .undeliverable([late], UndeliveredReason::LateReply);
        }
    }
}

fn recipient(request: &Message) -> HiveResult<AgentId> {
    match request.recipient {
        Recipient::Agent(to) => Ok(to),
        Recipient::Broadcast => Err(HiveError::NeedsOneRecipient {
            what: "a request (a broadcast has no single reply)",
        }),
    }
}

fn reply_timeout(after: Duration) -> HiveError {
    HiveError::Timeout {
        what: "reply",
        after,
    }
}

/// Request and reply: ask one agent and wait for its answer.
///
/// The reply is the first `Response` (or `Error`) message whose correlation
/// id is the request's id, as [`Message::reply`] builds it. It never enters
/// the asker's mailbox: whoever sends it hands it to the waiting call, in
/// this process or, through a transport, from another one. A reply that
/// comes after the call gave up is dropped and counted as
/// [`LateReply`](UndeliveredReason::LateReply). Requests and replies are
/// never held back for batching.
impl Sender {
    /// Sends `request` (build it with [`Message::request`]) and blocks until
    /// its reply, at most `timeout` in all (waiting for room included).
    pub fn request(&self, request: Message, timeout: Duration) -> HiveResult<Message> {
        let to = recipient(&request)?;
        let mut pending = PendingReply::register(&self.shared, &request, timeout)?;
        let mut wait = BlockUntil::new(timeout);
        run_blocking(self.send_loop(to, request, &mut wait))?;
        self.flush_to(to);
        let outcome = pending.slot.wait_until(wait.deadline);
        pending.outcome(outcome)
    }

    /// [`request`](Self::request) from async code, on any executor: the
    /// communicator's own timer enforces `timeout` (give or take a
    /// millisecond), waiting for room included. Dropping the future gives
    /// up waiting.
    pub async fn request_async(&self, request: Message, timeout: Duration) -> HiveResult<Message> {
        let to = recipient(&request)?;
        let mut pending = PendingReply::register(&self.shared, &request, timeout)?;
        match self.try_send(request) {
            Ok(()) => {}
            Err(refused) if refused.is_full() => {
                // Wait for room, unless the deadline (the table times the
                // request out) comes first: then it was never sent.
                let mut forever = Await;
                let send = self.send_loop(to, refused.into_inner(), &mut forever);
                let mut send = std::pin::pin!(send);
                let slot = pending.slot.clone();
                let mut expired = std::pin::pin!(slot.wait());
                let sent = std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = send.as_mut().poll(cx) {
                        return Poll::Ready(Ok(r));
                    }
                    expired.as_mut().poll(cx).map(Err)
                })
                .await;
                match sent {
                    Ok(r) => r?,
                    Err(outcome) => return pending.outcome(Some(outcome)),
                }
            }
            Err(refused) => return Err(refused.into()),
        }
        self.flush_to(to);
        let outcome = pending.slot.wait().await;
        pending.outcome(Some(outcome))
    }
}
