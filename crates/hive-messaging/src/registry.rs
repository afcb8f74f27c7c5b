//! The routing table: which inbox a message to an agent goes to.
//!
//! A local agent's id maps to its own inbox; an agent hosted by another
//! process maps to the write queue of the link that reaches it (a transport
//! adds and removes those routes). A default route catches every id not in
//! the table (the NATS transport, which routes by subject).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use event_listener::Event;
use hive_types::{AgentId, HiveError, HiveResult};

use crate::idmap::IdMap;
use crate::inbox::Inbox;
use hive_types::sync::lock;

/// Local agents that joined or left, in order, for transports that tell
/// their peers (kept for the last [`LOG_CAPACITY`] changes).
#[derive(Debug, Default)]
struct LocalLog {
    entries: VecDeque<(u64, AgentId, bool)>,
    next: u64,
}

/// How many local changes are kept for transports catching up; one that
/// falls further behind resynchronises from the whole table.
const LOG_CAPACITY: usize = 4096;

/// What changed among the local agents since a transport last looked.
#[derive(Debug)]
#[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
pub(crate) enum LocalChanges {
    /// These (agent, joined) changes, in order; look again from `next`.
    Since(Vec<(AgentId, bool)>, u64),
    /// Too far behind: compare with the whole table; look again from `next`.
    Resync(u64),
}

/// Gives back a table's memory when it is mostly empty (a million agents
/// that came and went, or a peer's million routes, leave nothing behind);
/// amortised: the table shrinks only after losing three quarters.
fn shrink_if_sparse(map: &mut IdMap<Arc<Inbox>>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: RwLock<IdMap<Arc<Inbox>>>,
    /// Where messages to agents not in the table go.
    default_route: RwLock<Option<Arc<Inbox>>>,
    /// Notified whenever a local agent joins or leaves (transports tell
    /// their peers); routes to other processes do not notify.
    pub(crate) locals_changed: Event,
    log: Mutex<LocalLog>,
    /// Every inbox with a live consumer, by address, for statistics.
    consumed: Mutex<HashMap<usize, Weak<Inbox>>>,
    /// Deliveries counted by consumers that are gone.
    retired_delivered: AtomicU64,
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, IdMap<Arc<Inbox>>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, IdMap<Arc<Inbox>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a local change and tells the transports.
    fn local_change(&self, agent: AgentId, joined: bool) {
        {
            let mut log = lock(&self.log);
            let seq = log.next;
            log.next += 1;
            if log.entries.len() == LOG_CAPACITY {
                log.entries.pop_front();
            }
            log.entries.push_back((seq, agent, joined));
        }
        self.locals_changed.notify(usize::MAX);
    }

    /// Local changes from `seq` on (see [`LocalChanges`]).
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn local_changes_since(&self, seq: u64) -> LocalChanges {
        let log = lock(&self.log);
        match log.entries.front() {
            Some((oldest, _, _)) if *oldest > seq => LocalChanges::Resync(log.next),
            None if log.next > seq => LocalChanges::Resync(log.next),
            _ => LocalChanges::Since(
                log.entries
                    .iter()
                    .filter(|(s, _, _)| *s >= seq)
                    .map(|(_, a, joined)| (*a, *joined))
                    .collect(),
                log.next,
            ),
        }
    }

    /// The sequence number the next local change will get.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn local_sequence(&self) -> u64 {
        lock(&self.log).next
    }

    /// Registers a local agent's inbox.
    pub(crate) fn register(&self, inbox: &Arc<Inbox>) -> HiveResult<()> {
        match self.write().entry(inbox.agent) {
            Entry::Occupied(_) => return Err(HiveError::AlreadyRegistered(inbox.agent)),
            Entry::Vacant(v) => {
                v.insert(inbox.clone());
            }
        }
        self.local_change(inbox.agent, true);
        Ok(())
    }

    /// Removes `agent`, whatever its inbox; returns it.
    pub(crate) fn remove(&self, agent: &AgentId) -> Option<Arc<Inbox>> {
        let removed = {
            let mut map = self.write();
            let removed = map.remove(agent);
            shrink_if_sparse(&mut map);
            removed
        };
        if let Some(inbox) = removed.as_ref().filter(|i| !i.remote) {
            self.local_change(inbox.agent, false);
        }
        removed
    }

    /// Removes the entry of `inbox`'s agent if it is that inbox.
    pub(crate) fn unregister(&self, inbox: &Arc<Inbox>) {
        let removed = {
            let mut map = self.write();
            let ours = map.get(&inbox.agent).is_some_and(|i| Arc::ptr_eq(i, inbox));
            let removed = ours && map.remove(&inbox.agent).is_some();
            shrink_if_sparse(&mut map);
            removed
        };
        if removed && !inbox.remote {
            self.local_change(inbox.agent, false);
        }
    }

    /// The inbox of `agent` in the table.
    pub(crate) fn get(&self, agent: &AgentId) -> Option<Arc<Inbox>> {
        self.read().get(agent).cloned()
    }

    /// The inbox for `agent`: its own, or the default route.
    pub(crate) fn route(&self, agent: &AgentId) -> Option<Arc<Inbox>> {
        self.get(agent).or_else(|| {
            self.default_route
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }

    /// Sets (or clears) the route for agents not in the table.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn set_default_route(&self, route: Option<Arc<Inbox>>) {
        *self
            .default_route
            .write()
            .unwrap_or_else(PoisonError::into_inner) = route;
    }

    /// Whether `agent` has a mailbox in this process.
    pub(crate) fn is_local(&self, agent: &AgentId) -> bool {
        self.read().get(agent).is_some_and(|i| !i.remote)
    }

    /// The inboxes of agents in this process.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn local_inboxes(&self) -> Vec<Arc<Inbox>> {
        self.read()
            .values()
            .filter(|i| !i.remote)
            .cloned()
            .collect()
    }

    /// Every distinct inbox (a link's queue appears once, however many
    /// remote agents route to it).
    pub(crate) fn inboxes(&self) -> Vec<Arc<Inbox>> {
        let map = self.read();
        let mut seen: Vec<Arc<Inbox>> = Vec::with_capacity(map.len());
        for inbox in map.values() {
            if !inbox.remote || !seen.iter().any(|s| Arc::ptr_eq(s, inbox)) {
                seen.push(inbox.clone());
            }
        }
        seen
    }

    /// Agents reachable through the table: local ones and those routed to
    /// links (not the links' own ids).
    pub(crate) fn agent_ids(&self) -> Vec<AgentId> {
        self.read()
            .iter()
            .filter(|(id, i)| !(i.remote && i.agent == **id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Agents whose mailbox is in this process.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn local_agents(&self) -> Vec<AgentId> {
        self.read()
            .iter()
            .filter(|(_, i)| !i.remote)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Routes `agent` to a link's queue, unless the id is taken.
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn add_route(&self, agent: AgentId, link: &Arc<Inbox>) -> bool {
        match self.write().entry(agent) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(link.clone());
                true
            }
        }
    }

    /// Removes the route of `agent` if it leads to `link`.
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    pub(crate) fn remove_route(&self, agent: &AgentId, link: &Arc<Inbox>) {
        let mut map = self.write();
        if map.get(agent).is_some_and(|i| Arc::ptr_eq(i, link)) {
            map.remove(agent);
        }
    }

    /// Removes every route (and the id) of a link's queue, and gives back
    /// the table's memory when it is mostly empty (a peer that announced a
    /// million agents leaves nothing behind).
    #[cfg_attr(not(any(feature = "tcp", feature = "nats")), allow(dead_code))]
    pub(crate) fn remove_routes_to(&self, link: &Arc<Inbox>) {
        let mut map = self.write();
        map.retain(|_, i| !Arc::ptr_eq(i, link));
        shrink_if_sparse(&mut map);
    }

    /// Starts counting deliveries of `inbox` (its consumer exists).
    pub(crate) fn track(&self, inbox: &Arc<Inbox>) {
        lock(&self.consumed).insert(Arc::as_ptr(inbox) as usize, Arc::downgrade(inbox));
    }

    /// Its consumer is gone: keep its deliveries in the retired total.
    pub(crate) fn retire(&self, inbox: &Arc<Inbox>) {
        let mut consumed = lock(&self.consumed);
        consumed.remove(&(Arc::as_ptr(inbox) as usize));
        if consumed.capacity() > 64 && consumed.len() < consumed.capacity() / 4 {
            consumed.shrink_to_fit();
        }
        self.retired_delivered
            .fetch_add(inbox.delivered(), Ordering::Relaxed);
    }

    /// Messages handed out by every consumer, past and present.
    pub(crate) fn delivered(&self) -> u64 {
        let consumed = lock(&self.consumed);
        let live: u64 = consumed
            .values()
            .filter_map(Weak::upgrade)
            .map(|i| i.delivered())
            .sum();
        live + self.retired_delivered.load(Ordering::Relaxed)
    }

    /// Room in the routing table (tests: memory is given back).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.read().capacity()
    }

    /// Inboxes whose deliveries are tracked (tests: nothing leaks).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        lock(&self.consumed).len()
    }
}
