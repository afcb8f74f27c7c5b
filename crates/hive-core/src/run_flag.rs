//! Whether a synchronous agent has a run queued or running on the
//! balancer: at most one at a time, and no mail left behind when a run
//! ends as mail arrives.
//!
//! A sender queues mail, then [`request`](RunFlag::request)s a run; the
//! run ends with [`release`](RunFlag::release) and then looks for mail
//! once more, requesting another run if there is some. The swap and the
//! fence are sequentially consistent, so either the sender sees the flag
//! down (and starts a run), or the ending run sees the mail.

use crate::sync::{fence, AtomicBool, Ordering};

#[derive(Debug)]
pub(crate) struct RunFlag(AtomicBool);

impl RunFlag {
    pub(crate) fn new() -> Self {
        RunFlag(AtomicBool::new(false))
    }

    /// True when the caller must start a run (none was queued or running).
    #[inline]
    pub(crate) fn request(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }

    /// A requested run could not be queued: nobody runs.
    pub(crate) fn cancel(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// The run ends; the caller then looks for mail and requests again.
    /// (A swap rather than a store: loom, which models SeqCst as AcqRel,
    /// then checks the protocol as written.)
    pub(crate) fn release(&self) {
        self.0.swap(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};

    struct Agent {
        flag: RunFlag,
        mail: AtomicUsize,
        handled: AtomicUsize,
        running: AtomicBool,
        /// Runs requested and not started (the balancer's queue).
        queued_runs: Mutex<usize>,
    }

    impl Agent {
        fn send(&self) {
            self.mail.fetch_add(1, Ordering::SeqCst);
            if self.flag.request() {
                *self.queued_runs.lock().unwrap() += 1;
            }
        }

        /// Starts a queued run, if any, the way `BalancerAgent::run` does.
        fn run_one(&self) -> bool {
            {
                let mut runs = self.queued_runs.lock().unwrap();
                if *runs == 0 {
                    return false;
                }
                *runs -= 1;
            }
            assert!(
                !self.running.swap(true, Ordering::SeqCst),
                "two runs at once"
            );
            let got = self.mail.swap(0, Ordering::SeqCst);
            self.handled.fetch_add(got, Ordering::SeqCst);
            self.running.store(false, Ordering::SeqCst);
            self.flag.release();
            if self.mail.load(Ordering::SeqCst) > 0 && self.flag.request() {
                *self.queued_runs.lock().unwrap() += 1;
            }
            true
        }
    }

    /// A sender races a run that is ending: every message is handled, by
    /// one run at a time, and no run stays requested.
    #[test]
    fn loom_no_mail_is_left_behind_and_runs_never_overlap() {
        loom::model(|| {
            let agent = Arc::new(Agent {
                flag: RunFlag::new(),
                mail: AtomicUsize::new(0),
                handled: AtomicUsize::new(0),
                running: AtomicBool::new(false),
                queued_runs: Mutex::new(0),
            });
            agent.send();
            let sender = {
                let agent = agent.clone();
                loom::thread::spawn(move || agent.send())
            };
            let runner = {
                let agent = agent.clone();
                loom::thread::spawn(move || {
                    agent.run_one();
                })
            };
            sender.join().unwrap();
            runner.join().unwrap();
            while agent.run_one() {}
            assert_eq!(agent.handled.load(Ordering::SeqCst), 2);
            assert!(
                !agent.flag.0.load(Ordering::SeqCst),
                "no run left requested"
            );
        });
    }
}
