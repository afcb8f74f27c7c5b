//! The tokio runtime async agents run on (the system's own, or the
//! user's), its timers, and the system's coarse clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hive_types::HiveResult;
use tokio::runtime::{Handle, Runtime};
use tokio::time::Sleep;

use hive_types::sync::lock;

/// The runtime, and whether the system owns it.
pub(crate) struct AgentRuntime {
    handle: Handle,
    owned: Mutex<Option<Runtime>>,
}

impl AgentRuntime {
    /// A multi-threaded runtime of `workers` threads, owned by the system.
    pub(crate) fn owned(workers: usize) -> HiveResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("hive-agent")
            .enable_all()
            .build()?;
        Ok(AgentRuntime {
            handle: runtime.handle().clone(),
            owned: Mutex::new(Some(runtime)),
        })
    }

    /// The user's runtime.
    pub(crate) fn external(handle: Handle) -> Self {
        AgentRuntime {
            handle,
            owned: Mutex::new(None),
        }
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// A timer on this runtime, started now.
    pub(crate) fn sleep(&self, after: Duration) -> Sleep {
        let _entered = self.handle.enter();
        tokio::time::sleep(after)
    }

    /// A timer on this runtime that starts when first polled (costs nothing
    /// if never polled: the fast path of a send that finds room).
    pub(crate) fn timer(&self, after: Duration) -> LazyTimer {
        LazyTimer {
            handle: self.handle.clone(),
            after,
            sleep: None,
        }
    }

    /// Stops an owned runtime without waiting for its tasks (safe from any
    /// thread, async or not). A user's runtime is left alone.
    pub(crate) fn shut_down(&self) {
        if let Some(runtime) = lock(&self.owned).take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for AgentRuntime {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// See [`AgentRuntime::timer`].
pub(crate) struct LazyTimer {
    handle: Handle,
    after: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Future for LazyTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let sleep = match &mut this.sleep {
            Some(sleep) => sleep,
            None => {
                let _entered = this.handle.enter();
                this.sleep.insert(Box::pin(tokio::time::sleep(this.after)))
            }
        };
        sleep.as_mut().poll(cx)
    }
}

/// Milliseconds since the system started: a precise reading, and a coarse
/// one the ticker refreshes every tick (one load to read, for per-message
/// bookkeeping such as the watchdog's start times).
pub(crate) struct Clock {
    epoch: Instant,
    coarse: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
            coarse: AtomicU64::new(0),
        }
    }

    pub(crate) fn precise_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    #[inline]
    pub(crate) fn coarse_ms(&self) -> u64 {
        self.coarse.load(Ordering::Relaxed)
    }

    /// The ticker's tick: the coarse clock catches up.
    pub(crate) fn tick(&self) -> u64 {
        let now = self.precise_ms();
        self.coarse.store(now, Ordering::Relaxed);
        now
    }
}
