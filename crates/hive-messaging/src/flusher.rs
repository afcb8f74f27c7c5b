//! The linger timer: a thread that flushes batches whose oldest message has
//! waited `linger`, and batches for consumers that went idle.
//!
//! It sleeps until the earliest deadline any sender registered. A sender
//! that opens a batch due earlier wakes it; while it scans, `wake_at` reads
//! "never", so every sender that opens a batch meanwhile wakes it again and
//! nothing is missed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hive_types::HiveResult;

use crate::shared::{Shared, NEVER};

/// Longest sleep when nothing is due: how soon the thread notices that its
/// communicator is gone.
const IDLE_TICK: Duration = Duration::from_millis(100);

pub(crate) fn spawn(shared: &Arc<Shared>) -> HiveResult<()> {
    let weak = Arc::downgrade(shared);
    let handle = std::thread::Builder::new()
        .name("hive-flusher".into())
        .spawn(move || run(&weak))?;
    let _ = shared.flusher.thread.set(handle.thread().clone());
    Ok(())
}

fn run(weak: &Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let (next, wake) = tick(&shared);
        let closed = shared.is_closed();
        let sleep = shared
            .instant(wake)
            .saturating_duration_since(Instant::now());
        drop(shared);
        if closed && next == NEVER {
            return;
        }
        if !sleep.is_zero() {
            std::thread::park_timeout(sleep);
        }
    }
}

/// One pass over the senders; returns the next deadline (`NEVER` if none)
/// and when the thread wakes next: at that deadline, or after `IDLE_TICK`.
///
/// `wake_at` says the real wake time even when nothing is due, so a
/// deadline later than it (a request's timeout of seconds, say) does not
/// wake the thread: it is seen at that wake-up, still in time.
fn tick(shared: &Shared) -> (u64, u64) {
    let signal = &shared.flusher;
    signal.wake_at.store(NEVER, Ordering::SeqCst);
    let poke = signal.idle_poke.swap(false, Ordering::SeqCst);
    let now = shared.nanos(Instant::now());
    let mut next = NEVER;
    for core in shared.live_senders() {
        let due = core.next_deadline();
        let core_next = if due <= now || poke {
            core.flush_due(shared, now, poke)
        } else {
            due
        };
        next = next.min(core_next);
    }
    next = next.min(shared.requests.expire(now));
    shared.recorders.maybe_publish_depth(&shared.registry, now);
    let idle_wake = now.saturating_add(u64::try_from(IDLE_TICK.as_nanos()).unwrap_or(u64::MAX));
    let wake = next.min(idle_wake);
    signal.wake_at.store(wake, Ordering::SeqCst);
    (next, wake)
}
