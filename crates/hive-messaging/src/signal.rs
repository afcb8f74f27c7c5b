//! [`Signal`]: an event whose notifier pays a fence and a load while
//! nobody waits.
//!
//! `event_listener::Event::notify` takes the event's lock (and allocates
//! its list on first use) even with no listener. Mailboxes notify on every
//! batch queued and every room released, almost always with nobody
//! waiting; a `Signal` skips the event then.
//!
//! The protocol (a Dekker handshake, modelled with loom below):
//! - a waiter registers its listener, then [`arm`](Signal::arm)s (a
//!   `SeqCst` store and fence), then looks at its condition once more;
//! - a notifier changes the condition, then [`notify`](Signal::notify)
//!   fences and notifies the event only if armed, disarming it.
//!
//! Either the waiter's last look sees the change, or the notifier sees the
//! arm of a listener registered before it: no wake-up is lost. Disarming
//! may clear a newer waiter's arm; that waiter registered before arming,
//! so the notification that follows reaches it (every listener is
//! notified, never some).

use event_listener::{Event, EventListener};

use crate::sync::{fence, AtomicBool, Ordering};

pub(crate) struct Signal {
    event: Event,
    armed: AtomicBool,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            event: Event::new(),
            armed: AtomicBool::new(false),
        }
    }

    /// The event to register a listener on; [`arm`](Self::arm) after.
    pub(crate) fn event(&self) -> &Event {
        &self.event
    }

    /// Registers a listener and arms: look at the condition after this.
    pub(crate) fn listen(&self) -> EventListener {
        let listener = self.event.listen();
        self.arm();
        listener
    }

    /// Says a listener is registered; call after registering it and before
    /// the last look at the condition.
    #[inline]
    pub(crate) fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Wakes every registered listener if any armed; call after changing
    /// the condition.
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.event.notify(usize::MAX);
        }
    }
}

// The event itself is not loom's (its lock is invisible to the model); it
// behaves as one atomic step, which is all the handshake relies on. Loom
// explores the flag, the fences and the condition.
#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use event_listener::Listener;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// A waiter and two notifiers: the waiter either sees both changes in
    /// its last look or a notification reaches its listener.
    #[test]
    fn loom_no_wake_up_is_lost() {
        loom::model(|| {
            let signal = Arc::new(Signal::new());
            let changes = Arc::new(AtomicUsize::new(0));
            let notifiers: Vec<_> = (0..2)
                .map(|_| {
                    let (signal, changes) = (signal.clone(), changes.clone());
                    loom::thread::spawn(move || {
                        changes.fetch_add(1, Ordering::Relaxed);
                        signal.notify();
                    })
                })
                .collect();
            let listener = signal.listen();
            let seen = changes.load(Ordering::Relaxed);
            for n in notifiers {
                n.join().unwrap();
            }
            assert!(seen == 2 || listener.discard(), "a wake-up was lost");
        });
    }
}

#[cfg(all(test, not(hive_loom)))]
mod tests {
    use super::*;
    use event_listener::Listener;
    use std::time::Duration;

    #[test]
    fn a_listener_is_woken_and_an_unarmed_notify_skips_the_event() {
        let signal = Signal::new();
        signal.notify(); // nobody armed: the event is not touched
        assert_eq!(signal.event().total_listeners(), 0);
        let listener = signal.listen();
        signal.notify();
        assert!(listener.wait_timeout(Duration::from_secs(5)).is_some());
        let listener = signal.listen();
        assert!(listener.wait_timeout(Duration::from_millis(1)).is_none());
    }
}
