//! Supervision: what happens when a handler panics ([`RestartPolicy`],
//! [`Backoff`]), the watchdog's settings, and the [`AgentEvent`]s a system
//! reports to its hook.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_types::AgentId;

/// What happens to an agent when one of its handlers panics. The message
/// being handled counts as handled either way (the panic is counted too);
/// what varies is the agent's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Stop the agent: it runs `on_stop`, its waiting mail is reported
    /// undelivered, and an [`AgentEventKind::Escalated`] event goes out.
    Never,
    /// Restart it after every panic (after the backoff): a fresh instance
    /// from its factory if it was spawned with one, else the same instance,
    /// then `on_start` again. The default.
    #[default]
    Always,
    /// Restart it as [`Always`](Self::Always) does, at most `restarts` times
    /// within any `within` window; one more panic in the window stops it as
    /// [`Never`](Self::Never) does.
    AtMost {
        /// Restarts allowed in the window.
        restarts: u32,
        /// The window.
        within: Duration,
    },
}

impl RestartPolicy {
    /// [`RestartPolicy::AtMost`].
    pub const fn at_most(restarts: u32, within: Duration) -> Self {
        RestartPolicy::AtMost { restarts, within }
    }
}

/// How long a restart waits, growing with the restarts of the recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    /// Wait before the first restart (zero: restart at once).
    pub initial: Duration,
    /// Longest wait; each further restart in the window doubles it up to here.
    pub max: Duration,
}

impl Backoff {
    /// No wait (the default).
    pub const fn none() -> Self {
        Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// `initial`, doubling per restart in the window, up to `max`.
    pub const fn exponential(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The wait before restart number `n` (1 for the first).
    pub fn delay(&self, n: u32) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1u32 << n.saturating_sub(1).min(20);
        self.initial
            .saturating_mul(factor)
            .min(self.max.max(self.initial))
    }
}

/// What the watchdog does with a handler that runs longer than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overrun {
    /// Report it (an [`AgentEventKind::Overrun`] event and a metric) and
    /// let it run.
    Report,
    /// Report it and cancel the handler (async agents only: the handler's
    /// future is dropped at its next await; a sync handler cannot be
    /// interrupted and is only reported).
    Cancel,
}

/// A handler time limit and what to do past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// How long a handler may run (since it started, or since its last
    /// [`Context::heartbeat`](crate::Context::heartbeat)).
    pub limit: Duration,
    /// What happens past the limit.
    pub action: Overrun,
}

/// The verdict after a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Restart { after: Duration, restarts: u32 },
    Stop,
}

/// One agent's restart bookkeeping.
#[derive(Debug)]
pub(crate) struct Supervisor {
    policy: RestartPolicy,
    backoff: Backoff,
    recent: VecDeque<Instant>,
}

impl Supervisor {
    pub(crate) fn new(policy: RestartPolicy, backoff: Backoff) -> Self {
        Supervisor {
            policy,
            backoff,
            recent: VecDeque::new(),
        }
    }

    /// A handler panicked: restart (after how long), or stop.
    pub(crate) fn after_panic(&mut self) -> Verdict {
        let now = Instant::now();
        match self.policy {
            RestartPolicy::Never => Verdict::Stop,
            RestartPolicy::Always => {
                // Restarts within a minute set the backoff's growth.
                self.recent
                    .retain(|t| now.saturating_duration_since(*t) < Duration::from_secs(60));
                self.restart(now)
            }
            RestartPolicy::AtMost { restarts, within } => {
                self.recent
                    .retain(|t| now.saturating_duration_since(*t) < within);
                if self.recent.len() >= restarts as usize {
                    Verdict::Stop
                } else {
                    self.restart(now)
                }
            }
        }
    }

    fn restart(&mut self, now: Instant) -> Verdict {
        self.recent.push_back(now);
        let n = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        Verdict::Restart {
            after: self.backoff.delay(n),
            restarts: n,
        }
    }
}

/// Something that happened to an agent; see
/// [`SwarmBuilder::on_event`](crate::SwarmBuilder::on_event).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentEvent {
    /// The agent.
    pub agent: AgentId,
    /// Its name, if it has one.
    pub name: Option<Arc<str>>,
    /// What happened.
    pub kind: AgentEventKind,
}

/// What happened to an agent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentEventKind {
    /// It started (its `on_start` is about to run).
    Started,
    /// A handler panicked, with the panic's message.
    Panicked(String),
    /// It restarted after a panic: the restarts in its current window, and
    /// the backoff it waited first.
    Restarted {
        /// Restarts in the policy's window so far.
        restarts: u32,
        /// The backoff waited before restarting.
        after: Duration,
    },
    /// Its restart policy gave up: it stops.
    Escalated,
    /// A handler ran past the watchdog's limit.
    Overrun {
        /// How long it had run when the watchdog saw it.
        running: Duration,
        /// Whether the handler was cancelled.
        cancelled: bool,
    },
    /// It stopped.
    Stopped(StopReason),
}

/// The system's event hook.
pub(crate) type EventHook = Arc<dyn Fn(&AgentEvent) + Send + Sync>;

/// Holds the hook, if any, and calls it.
#[derive(Clone, Default)]
pub(crate) struct Events(pub(crate) Option<EventHook>);

impl Events {
    pub(crate) fn emit(&self, agent: AgentId, name: Option<&Arc<str>>, kind: AgentEventKind) {
        if let Some(hook) = &self.0 {
            hook(&AgentEvent {
                agent,
                name: name.cloned(),
                kind,
            });
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Events(hook)"
        } else {
            "Events(none)"
        })
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_allows_that_many_restarts_in_the_window() {
        let mut s = Supervisor::new(
            RestartPolicy::at_most(2, Duration::from_secs(60)),
            Backoff::none(),
        );
        assert!(matches!(
            s.after_panic(),
            Verdict::Restart { restarts: 1, .. }
        ));
        assert!(matches!(
            s.after_panic(),
            Verdict::Restart { restarts: 2, .. }
        ));
        assert_eq!(s.after_panic(), Verdict::Stop);
        let mut never = Supervisor::new(RestartPolicy::Never, Backoff::none());
        assert_eq!(never.after_panic(), Verdict::Stop);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(35));
        let waits: Vec<u128> = (1..=4).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, vec![10, 20, 35, 35]);
        assert_eq!(Backoff::none().delay(5), Duration::ZERO);
        let mut s = Supervisor::new(RestartPolicy::Always, b);
        assert_eq!(
            s.after_panic(),
            Verdict::Restart {
                after: Duration::from_millis(10),
                restarts: 1
            }
        );
        assert_eq!(
            s.after_panic(),
            Verdict::Restart {
                after: Duration::from_millis(20),
                restarts: 2
            }
        );
    }
}

/// Why an agent stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// It was asked to stop ([`StopMode::Drain`](crate::StopMode::Drain):
    /// after handling its mail, or [`StopMode::Cancel`](crate::StopMode::Cancel):
    /// its mail reported undelivered).
    Stopped,
    /// A handler panicked and its restart policy said stop.
    Panicked,
    /// The system shut down.
    Shutdown,
}

impl StopReason {
    /// Lower-case name, for metric labels and lifecycle messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            StopReason::Stopped => "stopped",
            StopReason::Panicked => "panicked",
            StopReason::Shutdown => "shutdown",
        }
    }

    pub(crate) const fn code(self) -> u8 {
        match self {
            StopReason::Stopped => 0,
            StopReason::Panicked => 1,
            StopReason::Shutdown => 2,
        }
    }

    pub(crate) const fn from_code(code: u8) -> Option<StopReason> {
        match code {
            0 => Some(StopReason::Stopped),
            1 => Some(StopReason::Panicked),
            2 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}
