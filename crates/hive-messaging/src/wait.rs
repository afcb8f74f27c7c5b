//! How a sender waits for room: one retry loop, many ways to wait.
//!
//! The send, broadcast and request loops are written once, as `async fn`s
//! generic over a [`Wait`]. The blocking waiters block inside `wait` and
//! return a future that is already complete, so a blocking caller runs the
//! loop to its end in a single poll ([`run_blocking`]); the async waiters
//! return real futures.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};

/// A way of waiting for an event, possibly giving up.
pub(crate) trait Wait {
    /// Waits for `listener`; `false` means the waiter gave up (its deadline
    /// passed) and the caller should make its last attempt.
    fn wait(&mut self, listener: EventListener) -> impl Future<Output = bool> + Send;

    /// How long the waiter was willing to wait, for the timeout error.
    fn patience(&self) -> Duration;
}

/// Blocks the thread until the event, without limit.
pub(crate) struct Block;

impl Wait for Block {
    fn wait(&mut self, listener: EventListener) -> impl Future<Output = bool> + Send {
        listener.wait();
        std::future::ready(true)
    }

    fn patience(&self) -> Duration {
        Duration::MAX
    }
}

/// Blocks the thread until the event or a deadline.
pub(crate) struct BlockUntil {
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
}

impl BlockUntil {
    pub(crate) fn new(timeout: Duration) -> Self {
        BlockUntil {
            deadline: Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(far_future),
            timeout,
        }
    }
}

impl Wait for BlockUntil {
    fn wait(&mut self, listener: EventListener) -> impl Future<Output = bool> + Send {
        // Past the deadline nothing waits, even if every wait would end at
        // once (a busy event): the caller stops retrying.
        let woken =
            Instant::now() < self.deadline && listener.wait_deadline(self.deadline).is_some();
        std::future::ready(woken)
    }

    fn patience(&self) -> Duration {
        self.timeout
    }
}

/// Awaits the event, without limit.
pub(crate) struct Await;

impl Wait for Await {
    async fn wait(&mut self, listener: EventListener) -> bool {
        listener.await;
        true
    }

    fn patience(&self) -> Duration {
        Duration::MAX
    }
}

/// Awaits the event or `give_up` (a timer of the caller's runtime),
/// whichever comes first; once `give_up` fired, every later wait gives up
/// at once.
pub(crate) struct AwaitOr<G> {
    give_up: Pin<Box<G>>,
    fired: bool,
    timeout: Duration,
}

impl<G: Future<Output = ()> + Send> AwaitOr<G> {
    pub(crate) fn new(give_up: G, timeout: Duration) -> Self {
        AwaitOr {
            give_up: Box::pin(give_up),
            fired: false,
            timeout,
        }
    }
}

impl<G: Future<Output = ()> + Send> Wait for AwaitOr<G> {
    fn wait(&mut self, listener: EventListener) -> impl Future<Output = bool> + Send {
        let mut listener = Box::pin(listener);
        std::future::poll_fn(move |cx| {
            if self.fired {
                return Poll::Ready(false);
            }
            if listener.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            if self.give_up.as_mut().poll(cx).is_ready() {
                self.fired = true;
                return Poll::Ready(false);
            }
            Poll::Pending
        })
    }

    fn patience(&self) -> Duration {
        self.timeout
    }
}

/// Runs a loop whose every wait blocks the thread (so it never returns
/// `Pending`) to completion in one poll.
pub(crate) fn run_blocking<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        // Unreachable with the blocking waiters; yield rather than spin if
        // a future ever does return `Pending`.
        std::thread::yield_now();
    }
}

/// A deadline so far away it never comes (for a timeout of `Duration::MAX`).
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
