//! Tasks in queues, and the [`TaskHandle`] that waits for a result.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, Listener};
use hive_types::sync::lock;
use hive_types::{HiveError, HiveResult, Priority, TaskId};

/// Work a queue holds: run it, or cancel it at shutdown.
pub(crate) trait Job: Send {
    /// Runs the work; returns whether it panicked.
    fn run(self: Box<Self>) -> bool;
    /// Drops the work unrun, telling whoever waits for it.
    fn cancel(self: Box<Self>);
}

/// A queued task.
pub(crate) struct Task {
    pub(crate) job: Box<dyn Job>,
    pub(crate) class: Priority,
    pub(crate) enqueued: Instant,
}

/// A task that does nothing, for the placement and picking unit tests.
#[cfg(test)]
impl Task {
    pub(crate) fn noop(class: Priority, enqueued: Instant) -> Task {
        struct Noop;
        impl Job for Noop {
            fn run(self: Box<Self>) -> bool {
                false
            }
            fn cancel(self: Box<Self>) {}
        }
        Task {
            job: Box::new(Noop),
            class,
            enqueued,
        }
    }
}

/// Fire-and-forget work.
pub(crate) struct Detached<F>(pub(crate) F);

impl<F: FnOnce() + Send> Job for Detached<F> {
    fn run(self: Box<Self>) -> bool {
        match catch_unwind(AssertUnwindSafe(self.0)) {
            Ok(()) => false,
            Err(payload) => {
                drop_payload(payload);
                true
            }
        }
    }
    fn cancel(self: Box<Self>) {}
}

/// Drops a panic payload whose own `drop` may panic: that second panic is
/// caught and its payload leaked, so the worker thread lives on.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Work whose result goes to a [`TaskHandle`].
pub(crate) struct WithHandle<F, R> {
    pub(crate) f: F,
    pub(crate) state: Arc<HandleState<R>>,
}

impl<F: FnOnce() -> R + Send, R: Send> Job for WithHandle<F, R> {
    fn run(self: Box<Self>) -> bool {
        let WithHandle { f, state } = *self;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => {
                state.resolve(Ok(value));
                false
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                drop_payload(payload);
                state.resolve(Err(HiveError::TaskPanicked { message }));
                true
            }
        }
    }

    fn cancel(self: Box<Self>) {
        self.state.resolve(Err(HiveError::Cancelled));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Where a task's outcome lands.
pub(crate) struct HandleState<R> {
    outcome: Mutex<Option<HiveResult<R>>>,
    done: AtomicBool,
    event: Event,
}

impl<R> HandleState<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(HandleState {
            outcome: Mutex::new(None),
            done: AtomicBool::new(false),
            event: Event::new(),
        })
    }

    fn resolve(&self, outcome: HiveResult<R>) {
        *lock(&self.outcome) = Some(outcome);
        self.done.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    fn take(&self) -> Option<HiveResult<R>> {
        if !self.done.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.outcome).take()
    }
}

/// The result of a submitted task, to be joined (blocking) or awaited.
///
/// Resolves to the task's return value, to [`HiveError::TaskPanicked`] if it
/// panicked (the worker lives on), or to [`HiveError::Cancelled`] if the
/// balancer shut down before running it. Dropping the handle does not
/// cancel the task.
pub struct TaskHandle<R> {
    id: TaskId,
    class: Priority,
    state: Arc<HandleState<R>>,
    listener: Option<EventListener>,
}

impl<R> TaskHandle<R> {
    pub(crate) fn new(class: Priority, state: Arc<HandleState<R>>) -> Self {
        TaskHandle {
            id: TaskId::random(),
            class,
            state,
            listener: None,
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The class it was submitted to.
    pub fn priority(&self) -> Priority {
        self.class
    }

    /// Whether the outcome is ready.
    pub fn is_finished(&self) -> bool {
        self.state.done.load(Ordering::Acquire)
    }

    /// Blocks until the task finishes.
    pub fn join(self) -> HiveResult<R> {
        loop {
            if let Some(outcome) = self.state.take() {
                return outcome;
            }
            let listener = self.state.event.listen();
            if let Some(outcome) = self.state.take() {
                return outcome;
            }
            listener.wait();
        }
    }

    /// Blocks at most `timeout`; gives the handle back if the task is not done.
    pub fn join_timeout(self, timeout: Duration) -> Result<HiveResult<R>, TaskHandle<R>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(outcome) = self.state.take() {
                return Ok(outcome);
            }
            let listener = self.state.event.listen();
            if let Some(outcome) = self.state.take() {
                return Ok(outcome);
            }
            if listener.wait_deadline(deadline).is_none() {
                return match self.state.take() {
                    Some(outcome) => Ok(outcome),
                    None => Err(self),
                };
            }
        }
    }
}

impl<R> Future for TaskHandle<R> {
    type Output = HiveResult<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HiveResult<R>> {
        loop {
            if let Some(outcome) = self.state.take() {
                return Poll::Ready(outcome);
            }
            match self.listener.as_mut() {
                None => {
                    let listener = self.state.event.listen();
                    self.listener = Some(listener);
                }
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }
}

impl<R> fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("priority", &self.class)
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_handle_joins_at_once() {
        let state = HandleState::new();
        let job = Box::new(WithHandle {
            f: || 6 * 7,
            state: state.clone(),
        });
        assert!(!job.run());
        assert_eq!(TaskHandle::new(Priority::Normal, state).join().unwrap(), 42);
    }

    #[test]
    fn panics_become_errors_with_the_message() {
        let state = HandleState::<()>::new();
        let job = Box::new(WithHandle {
            f: || panic!("boom"),
            state: state.clone(),
        });
        assert!(job.run());
        let err = TaskHandle::new(Priority::Low, state).join().unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn cancelled_and_unfinished_handles() {
        let state = HandleState::<u8>::new();
        let handle = TaskHandle::new(Priority::High, state.clone());
        let handle = handle.join_timeout(Duration::from_millis(5)).unwrap_err();
        Box::new(WithHandle { f: || 1u8, state }).cancel();
        assert!(matches!(handle.join(), Err(HiveError::Cancelled)));
    }
}
