//! The system's directory: every running agent by id, and names.
//!
//! Bounded: at most `max_agents` agents (a spawn beyond it is refused with
//! `Full`), so at most that many names; per-agent metric series are kept
//! for at most `max_observed` of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hive_types::{AgentId, HiveError, HiveResult};

use crate::cell::AgentCell;

#[derive(Default)]
struct Table {
    agents: HashMap<AgentId, Arc<AgentCell>>,
    names: HashMap<Arc<str>, AgentId>,
}

pub(crate) struct Directory {
    table: RwLock<Table>,
    max_agents: usize,
    max_observed: usize,
    observed: AtomicUsize,
}

impl Directory {
    pub(crate) fn new(max_agents: usize, max_observed: usize) -> Self {
        Directory {
            table: RwLock::new(Table::default()),
            max_agents,
            max_observed,
            observed: AtomicUsize::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks that `name` is free and there is room for one more agent.
    pub(crate) fn check_room(&self, name: Option<&str>) -> HiveResult<()> {
        let table = self.read();
        if table.agents.len() >= self.max_agents {
            return Err(HiveError::Full {
                what: "agent directory",
                capacity: self.max_agents,
            });
        }
        match name {
            Some(n) if table.names.contains_key(n) => Err(HiveError::NameTaken(n.to_string())),
            _ => Ok(()),
        }
    }

    /// Claims one of the per-agent series slots, if any is left.
    pub(crate) fn claim_observed(&self) -> bool {
        self.observed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_observed).then_some(n + 1)
            })
            .is_ok()
    }

    /// Adds a started agent (and its name).
    pub(crate) fn insert(&self, cell: Arc<AgentCell>) -> HiveResult<()> {
        let refused = {
            let mut table = self.write();
            if table.agents.len() >= self.max_agents {
                Some(HiveError::Full {
                    what: "agent directory",
                    capacity: self.max_agents,
                })
            } else if let Some(name) = cell.name.as_ref().filter(|n| table.names.contains_key(*n)) {
                Some(HiveError::NameTaken(name.to_string()))
            } else {
                if let Some(name) = &cell.name {
                    table.names.insert(name.clone(), cell.id);
                }
                table.agents.insert(cell.id, cell.clone());
                None
            }
        };
        match refused {
            None => Ok(()),
            Some(e) => {
                if cell.observed.is_some() {
                    self.observed.fetch_sub(1, Ordering::AcqRel);
                }
                Err(e)
            }
        }
    }

    /// Removes a stopped agent and frees its name.
    pub(crate) fn remove(&self, id: &AgentId) {
        let mut table = self.write();
        if let Some(cell) = table.agents.remove(id) {
            if let Some(name) = &cell.name {
                if table.names.get(name) == Some(id) {
                    table.names.remove(name);
                }
            }
            table.names.retain(|_, a| a != id);
            if cell.observed.is_some() {
                self.observed.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    pub(crate) fn get(&self, id: &AgentId) -> Option<Arc<AgentCell>> {
        self.read().agents.get(id).cloned()
    }

    /// The agent registered under `name`.
    pub(crate) fn lookup(&self, name: &str) -> Option<AgentId> {
        self.read().names.get(name).copied()
    }

    /// Gives a running agent another name.
    pub(crate) fn name(&self, id: AgentId, name: &str) -> HiveResult<()> {
        let mut table = self.write();
        if !table.agents.contains_key(&id) {
            return Err(HiveError::UnknownAgent(id));
        }
        if table.names.contains_key(name) {
            return Err(HiveError::NameTaken(name.to_string()));
        }
        table.names.insert(Arc::from(name), id);
        Ok(())
    }

    pub(crate) fn all(&self) -> Vec<Arc<AgentCell>> {
        self.read().agents.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().agents.len()
    }
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("agents", &self.len())
            .field("max_agents", &self.max_agents)
            .finish()
    }
}
