//! [`Turns`]: running a consumer in turns instead of a blocked thread.

use crate::mailbox::Mailbox;
use crate::sync::{fence, AtomicBool, Ordering};

/// The protocol for a consumer that a scheduler runs in turns (a
/// task per turn on a thread pool) instead of a thread blocked in `recv`.
/// hive-core runs each synchronous agent this way on the CPU balancer.
///
/// 1. [`Mailbox::on_ready`] sets a hook called whenever a batch arrives.
/// 2. On every reason to run (the hook, a retry), the scheduler calls
///    [`Turns::claim`]: `true` means no turn is queued or running, so the
///    caller queues one (at [`MailboxProbe::take_priority`]'s priority),
///    or gives the claim back with [`Turns::unclaim`] if it cannot.
/// 3. A turn starts with [`Turns::begin`] (senders batch for a busy
///    consumer), takes mail with `try_recv`, and ends with
///    [`Turns::end`]. Unless the consumer is stopping, another turn must
///    be claimed when the turn stopped with mail left (its budget spent),
///    or when [`Turns::look_again`] finds mail that arrived as it ended.
///
/// The release of the claim and the look for mail are ordered by a
/// sequentially consistent swap and fence, so either a sender's hook sees
/// the turn over (and claims the next), or the ending turn sees its mail;
/// a loom model checks it.
///
/// [`MailboxProbe::take_priority`]: crate::MailboxProbe::take_priority
///
/// ```
/// use hive_messaging::{AgentId, Communicator, CommunicatorConfig, Message, Turns};
///
/// let comm = Communicator::new(CommunicatorConfig::default())?;
/// let agent = AgentId::random();
/// let mut mailbox = comm.register(agent)?;
/// let turns = Turns::new();
/// comm.sender().send(Message::new(AgentId::nil(), agent, "hi")).map_err(|r| r.into_parts().1)?;
/// comm.flush_all();
/// assert!(turns.claim(), "no turn yet: this caller queues one");
/// assert!(!turns.claim(), "one turn at a time");
/// // the turn, on whatever thread the scheduler picked:
/// turns.begin(&mut mailbox);
/// while let Some(message) = mailbox.try_recv()? {
///     assert_eq!(message.payload.as_ref(), b"hi");
/// }
/// turns.end();
/// assert!(!turns.look_again(&mut mailbox), "nothing left: no next turn");
/// # Ok::<(), hive_messaging::HiveError>(())
/// ```
#[derive(Debug, Default)]
pub struct Turns {
    running: AtomicBool,
}

impl Turns {
    /// No turn queued or running.
    pub fn new() -> Self {
        Turns {
            running: AtomicBool::new(false),
        }
    }

    /// Claims the next turn: `true` when the caller must queue one (none
    /// was queued or running); `false` when one already will run.
    #[inline]
    pub fn claim(&self) -> bool {
        !self.running.swap(true, Ordering::SeqCst)
    }

    /// Gives a claim back: the turn it was for could not be queued.
    pub fn unclaim(&self) {
        self.running.store(false, Ordering::Release);
    }

    /// A turn starts: the consumer is busy, so senders batch for it.
    pub fn begin(&self, mailbox: &mut Mailbox) {
        mailbox.declare_busy();
    }

    /// A turn ends: its claim is released, so the next reason to run
    /// claims a new one. (A swap rather than a store: loom, which models
    /// SeqCst as AcqRel, then checks the protocol as written.)
    pub fn end(&self) {
        self.running.swap(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// After [`end`](Self::end) of a turn that emptied the mailbox:
    /// whether mail arrived as it ended, so the caller must
    /// [`claim`](Self::claim) another turn. When it returns `false` the
    /// consumer is idle, and the next batch calls the ready hook.
    pub fn look_again(&self, mailbox: &mut Mailbox) -> bool {
        mailbox.declare_idle()
    }
}

#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};

    struct Agent {
        flag: Turns,
        mail: AtomicUsize,
        handled: AtomicUsize,
        running: AtomicBool,
        /// Runs requested and not started (the balancer's queue).
        queued_runs: Mutex<usize>,
    }

    impl Agent {
        fn send(&self) {
            self.mail.fetch_add(1, Ordering::SeqCst);
            if self.flag.claim() {
                *self.queued_runs.lock().unwrap() += 1;
            }
        }

        /// Starts a queued turn, if any, the way hive-core's balancer runner
        /// does (`end` is `release`, then a look for mail).
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
            self.flag.end();
            if self.mail.load(Ordering::SeqCst) > 0 && self.flag.claim() {
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
                flag: Turns::new(),
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
                !agent.flag.running.load(Ordering::SeqCst),
                "no run left requested"
            );
        });
    }
}
