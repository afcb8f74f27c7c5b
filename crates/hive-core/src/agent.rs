//! What an agent is: [`Agent`] (async handlers, run as tokio tasks) and
//! [`SyncAgent`] (blocking handlers, run on the CPU balancer).

use std::fmt;
use std::future::Future;

use hive_types::Message;

use crate::context::{Context, SyncContext};
use crate::supervision::StopReason;

/// An agent whose handlers are async: it may await I/O (an LLM call, an
/// HTTP request, a timer) without holding a thread. It runs as a task on
/// the system's tokio runtime and handles one message at a time, in
/// priority order (see [`Mailbox`](crate::messaging::Mailbox)); different
/// agents run concurrently.
///
/// Implement it with `async fn`s:
///
/// ```
/// use hive_core::{Agent, Context, Message};
///
/// struct Greeter {
///     greeted: u64,
/// }
///
/// impl Agent for Greeter {
///     async fn handle(&mut self, message: Message, ctx: &mut Context) {
///         self.greeted += 1;
///         let hello = format!("hello, {}", String::from_utf8_lossy(&message.payload));
///         let _ = ctx.reply(&message, hello).await;
///     }
/// }
/// ```
///
/// CPU-heavy work belongs on the balancer, at a priority:
/// `ctx.spawn_cpu(Priority::High, move || score(&text)).await`.
pub trait Agent: Send + 'static {
    /// Runs before the first message, and again after each restart.
    fn on_start(&mut self, ctx: &mut Context) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Handles one message.
    fn handle(&mut self, message: Message, ctx: &mut Context) -> impl Future<Output = ()> + Send;

    /// Runs once when the agent stops, with the reason.
    fn on_stop(
        &mut self,
        ctx: &mut Context,
        reason: StopReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, reason);
        async {}
    }
}

/// An agent whose handlers are plain blocking functions: CPU-bound work,
/// or code without async. It runs on the CPU balancer's threads, at the
/// priority of its most urgent waiting message, one message at a time.
///
/// Any `FnMut(Message, &mut SyncContext<'_>) + Send` closure is one.
///
/// A handler that waits (on I/O, or a full mailbox) holds a balancer
/// thread meanwhile: prefer [`Agent`] for such work.
pub trait SyncAgent: Send + 'static {
    /// Runs before the first message, and again after each restart.
    fn on_start(&mut self, ctx: &mut SyncContext<'_>) {
        let _ = ctx;
    }

    /// Handles one message.
    fn handle(&mut self, message: Message, ctx: &mut SyncContext<'_>);

    /// Runs once when the agent stops, with the reason.
    fn on_stop(&mut self, ctx: &mut SyncContext<'_>, reason: StopReason) {
        let _ = (ctx, reason);
    }
}

impl<F> SyncAgent for F
where
    F: FnMut(Message, &mut SyncContext<'_>) + Send + 'static,
{
    fn handle(&mut self, message: Message, ctx: &mut SyncContext<'_>) {
        self(message, ctx)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
