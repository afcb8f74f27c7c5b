//! Whether the balancer takes work, and the submissions in flight: a
//! submit enters the gate before it looks at the run state and leaves once
//! its task is queued, so a shutdown that waits for the gate to empty sees
//! every task it accepted.

use crate::sync::{yield_now, AtomicU8, AtomicUsize, Ordering};

/// Whether the balancer takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running = 0,
    /// `shutdown`: no new work; everything queued still runs.
    Draining = 1,
    /// `shutdown_now` or drop: queued work is cancelled.
    Stopping = 2,
}

impl RunState {
    fn from_u8(v: u8) -> RunState {
        match v {
            0 => RunState::Running,
            1 => RunState::Draining,
            _ => RunState::Stopping,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Gate {
    state: AtomicU8,
    /// Submissions past their run-state check and not yet queued.
    inside: AtomicUsize,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            state: AtomicU8::new(RunState::Running as u8),
            inside: AtomicUsize::new(0),
        }
    }

    pub(crate) fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves to `state` unless already further along; returns the old one.
    pub(crate) fn advance(&self, state: RunState) -> RunState {
        RunState::from_u8(self.state.fetch_max(state as u8, Ordering::SeqCst))
    }

    /// Enters when the balancer runs; the caller then queues its task and
    /// [`leave`](Self::leave)s. False (not inside) once shutdown began.
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        // Inside before looking: a shutdown that changes the state after
        // this look waits for the task.
        self.inside.fetch_add(1, Ordering::SeqCst);
        if self.state() != RunState::Running {
            self.leave();
            return false;
        }
        true
    }

    #[inline]
    pub(crate) fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether a submission is between its check and its queueing. A
    /// read-modify-write, not a load: it joins the chain of `enter`s and
    /// `leave`s, so a submit that enters later is ordered after what the
    /// caller saw (the run state) even without SeqCst's total order, which
    /// loom does not model.
    pub(crate) fn busy(&self) -> bool {
        self.inside.fetch_add(0, Ordering::SeqCst) > 0
    }

    /// Waits (briefly: queueing never blocks) until no submission is inside.
    pub(crate) fn wait_empty(&self) {
        while self.busy() {
            yield_now();
        }
    }
}

#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// A submit races `shutdown`: whenever a worker that saw the shutdown
    /// decides it may exit (nothing inside the gate, nothing queued), the
    /// submit was refused, never accepted and left behind.
    #[test]
    fn loom_a_worker_never_exits_past_an_accepted_submit() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            let queued = Arc::new(AtomicUsize::new(0));
            let submit = {
                let (gate, queued) = (gate.clone(), queued.clone());
                loom::thread::spawn(move || {
                    if !gate.enter() {
                        return false;
                    }
                    queued.fetch_add(1, Ordering::SeqCst);
                    gate.leave();
                    true
                })
            };
            gate.advance(RunState::Draining);
            // The worker's exit test in `worker::run`.
            let exits = gate.state() == RunState::Draining
                && !gate.busy()
                && queued.load(Ordering::SeqCst) == 0;
            let accepted = submit.join().unwrap();
            assert!(
                !(exits && accepted),
                "a worker left an accepted task behind"
            );
        });
    }
}
