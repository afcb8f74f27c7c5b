//! State shared by a communicator, its senders, mailboxes and flusher.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use hive_types::{Message, SharedRecycler};

use crate::batch::Batch;
use crate::config::CommunicatorConfig;
use crate::idmap::IdMap;
use crate::inbox::Inbox;
use crate::sender::SenderCore;
use crate::stats::{Recorders, SendCounts};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Deadline value meaning "none".
pub(crate) const NEVER: u64 = u64::MAX;

pub(crate) struct Shared {
    pub(crate) config: CommunicatorConfig,
    epoch: Instant,
    pub(crate) linger_ns: u64,
    pub(crate) registry: RwLock<IdMap<Arc<Inbox>>>,
    /// Every mailbox ever registered and still alive, for statistics.
    pub(crate) all_inboxes: Mutex<Vec<Weak<Inbox>>>,
    /// Every live sender, for the flusher and for statistics.
    pub(crate) senders: Mutex<Vec<Weak<SenderCore>>>,
    /// Counts of senders that are gone, and deliveries of removed mailboxes.
    pub(crate) retired: Mutex<(SendCounts, u64)>,
    pub(crate) recycler: SharedRecycler<VecDeque<Message>>,
    dead_letters: Mutex<VecDeque<Message>>,
    pub(crate) undeliverable: AtomicU64,
    closed: AtomicBool,
    pub(crate) recorders: Recorders,
    pub(crate) flusher: FlusherSignal,
    /// Notified whenever the registry changes (links announce local agents).
    pub(crate) registry_changed: event_listener::Event,
    /// Where messages to agents not in the registry go (a NATS transport).
    default_route: RwLock<Option<Arc<Inbox>>>,
}

/// How senders and mailboxes reach the flusher thread.
#[derive(Debug, Default)]
pub(crate) struct FlusherSignal {
    pub(crate) thread: std::sync::OnceLock<Thread>,
    /// When the flusher will next wake on its own (NEVER while it scans).
    pub(crate) wake_at: AtomicU64,
    /// A consumer went idle while senders held batches for it.
    pub(crate) idle_poke: AtomicBool,
}

impl FlusherSignal {
    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// A batch will be due at `deadline`: wake the flusher if it would sleep past it.
    #[inline]
    pub(crate) fn schedule(&self, deadline: u64) {
        if deadline < self.wake_at.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// A consumer is about to wait while batches for it sit in senders.
    pub(crate) fn poke_idle(&self) {
        self.idle_poke.store(true, Ordering::SeqCst);
        self.wake();
    }
}

impl Shared {
    pub(crate) fn new(
        config: CommunicatorConfig,
        recycler: SharedRecycler<VecDeque<Message>>,
    ) -> Self {
        let linger_ns = u64::try_from(config.linger.as_nanos()).unwrap_or(u64::MAX / 4);
        Shared {
            config,
            epoch: Instant::now(),
            linger_ns,
            registry: RwLock::new(IdMap::default()),
            all_inboxes: Mutex::new(Vec::new()),
            senders: Mutex::new(Vec::new()),
            retired: Mutex::new((SendCounts::default(), 0)),
            recycler,
            dead_letters: Mutex::new(VecDeque::new()),
            undeliverable: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            recorders: Recorders::new(),
            flusher: FlusherSignal {
                wake_at: AtomicU64::new(NEVER),
                ..Default::default()
            },
            registry_changed: event_listener::Event::new(),
            default_route: RwLock::new(None),
        }
    }

    /// Nanoseconds since the communicator started, for deadlines.
    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NEVER - 1)
    }

    /// The instant `nanos` after the epoch.
    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Sets (or clears) the route for agents not in the registry.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn set_default_route(&self, route: Option<Arc<Inbox>>) {
        *self
            .default_route
            .write()
            .unwrap_or_else(PoisonError::into_inner) = route;
    }

    /// The inbox for `agent`: its own, or the default route.
    pub(crate) fn route(&self, agent: &hive_types::AgentId) -> Option<Arc<Inbox>> {
        self.inbox(agent).or_else(|| {
            self.default_route
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }

    pub(crate) fn inbox(&self, agent: &hive_types::AgentId) -> Option<Arc<Inbox>> {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)
            .cloned()
    }

    /// Every distinct inbox (a link's queue appears once, however many
    /// remote agents route to it).
    pub(crate) fn inboxes(&self) -> Vec<Arc<Inbox>> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        let mut seen: Vec<Arc<Inbox>> = Vec::with_capacity(registry.len());
        for inbox in registry.values() {
            if !inbox.remote || !seen.iter().any(|s| Arc::ptr_eq(s, inbox)) {
                seen.push(inbox.clone());
            }
        }
        seen
    }

    /// Agents reachable through the registry: local ones and those routed
    /// to links (not the links' own ids).
    pub(crate) fn agent_ids(&self) -> Vec<hive_types::AgentId> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        registry
            .iter()
            .filter(|(id, i)| !(i.remote && i.agent == **id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Agents whose mailbox is in this process.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn local_agents(&self) -> Vec<hive_types::AgentId> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        registry
            .iter()
            .filter(|(_, i)| !i.remote)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Routes `agent` to a link's queue, unless the id is taken.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn add_route(&self, agent: hive_types::AgentId, link: &Arc<Inbox>) -> bool {
        let added = {
            let mut registry = self
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            match registry.entry(agent) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(link.clone());
                    true
                }
            }
        };
        if added {
            self.registry_changed.notify(usize::MAX);
        }
        added
    }

    /// Removes the route of `agent` if it leads to `link`.
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    pub(crate) fn remove_route(&self, agent: &hive_types::AgentId, link: &Arc<Inbox>) {
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if registry.get(agent).is_some_and(|i| Arc::ptr_eq(i, link)) {
            registry.remove(agent);
        }
        drop(registry);
        self.registry_changed.notify(usize::MAX);
    }

    /// Removes every route (and the id) of a link's queue.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn remove_routes_to(&self, link: &Arc<Inbox>) {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, i| !Arc::ptr_eq(i, link));
        self.registry_changed.notify(usize::MAX);
    }

    /// Live senders (pruning the dead).
    pub(crate) fn live_senders(&self) -> Vec<Arc<SenderCore>> {
        let mut senders = lock(&self.senders);
        senders.retain(|w| w.strong_count() > 0);
        senders.iter().filter_map(Weak::upgrade).collect()
    }

    /// Keeps messages nobody can receive, for `take_undelivered`; beyond the
    /// configured capacity they are counted and dropped.
    pub(crate) fn undeliverable(&self, messages: impl IntoIterator<Item = Message>) {
        let mut dead = lock(&self.dead_letters);
        let mut n = 0usize;
        for m in messages {
            n += 1;
            if dead.len() < self.config.dead_letter_capacity {
                dead.push_back(m);
            }
        }
        drop(dead);
        self.undeliverable.fetch_add(n as u64, Ordering::Relaxed);
        self.recorders.undeliverable(n);
    }

    /// A batch that could not be queued: its messages become undeliverable
    /// and its buffer is recycled.
    pub(crate) fn refused(&self, mut batch: Batch) {
        self.undeliverable(batch.messages.drain(..));
        self.recycler.give(batch.messages);
    }

    pub(crate) fn take_dead_letters(&self) -> Vec<Message> {
        lock(&self.dead_letters).drain(..).collect()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("config", &self.config)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
