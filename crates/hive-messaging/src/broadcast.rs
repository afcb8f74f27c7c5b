//! Broadcasts: one message to every other registered agent.

use std::future::Future;
use std::time::Duration;

use hive_types::{AgentId, HiveError, HiveResult, Message};

use crate::sender::Sender;
use crate::wait::{run_blocking, Await, AwaitOr, Block, BlockUntil, Wait};

/// Which agents a broadcast reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Recipients that accepted a copy (a link to another process counts
    /// once: the peer hands it to each of its agents).
    pub reached: usize,
    /// Recipients whose mailbox stayed full until the timeout: they did not
    /// get the message.
    pub missed: Vec<AgentId>,
}

impl Sender {
    /// Sends a copy of `message` to every registered agent except its
    /// sender, waiting for room where needed, without limit.
    pub fn broadcast(&self, message: Message) -> HiveResult<BroadcastReport> {
        run_blocking(self.broadcast_with(message, &mut Block))
    }

    /// Like [`broadcast`](Self::broadcast), waiting at most `timeout` in
    /// all; recipients still full then are listed in
    /// [`BroadcastReport::missed`].
    pub fn broadcast_timeout(
        &self,
        message: Message,
        timeout: Duration,
    ) -> HiveResult<BroadcastReport> {
        run_blocking(self.broadcast_with(message, &mut BlockUntil::new(timeout)))
    }

    /// [`broadcast`](Self::broadcast) from async code.
    pub async fn broadcast_async(&self, message: Message) -> HiveResult<BroadcastReport> {
        self.broadcast_with(message, &mut Await).await
    }

    /// [`broadcast_timeout`](Self::broadcast_timeout) from async code; see
    /// [`send_async_timeout`](Self::send_async_timeout) for `give_up`.
    pub async fn broadcast_async_timeout(
        &self,
        message: Message,
        timeout: Duration,
        give_up: impl Future<Output = ()> + Send,
    ) -> HiveResult<BroadcastReport> {
        self.broadcast_with(message, &mut AwaitOr::new(give_up, timeout))
            .await
    }

    pub(crate) async fn broadcast_with<W: Wait>(
        &self,
        message: Message,
        wait: &mut W,
    ) -> HiveResult<BroadcastReport> {
        let mut report = BroadcastReport::default();
        let targets: Vec<AgentId> = self
            .shared
            .registry
            .inboxes()
            .iter()
            .filter(|inbox| inbox.agent != message.sender)
            .map(|inbox| inbox.agent)
            .collect();
        for to in targets {
            match self.send_loop(to, message.clone(), wait).await {
                Ok(()) => report.reached += 1,
                Err(refused) => match refused.error() {
                    // It left meanwhile: nobody to reach.
                    HiveError::UnknownAgent(_) => {}
                    HiveError::Timeout { .. } => report.missed.push(to),
                    _ => return Err(refused.into()),
                },
            }
        }
        Ok(report)
    }
}
