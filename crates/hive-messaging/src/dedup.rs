//! The ids of recently received messages, to drop a second copy.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasherDefault;

use hive_types::MessageId;

use crate::idmap::IdHasher;

/// The last `capacity` message ids taken from other processes, oldest
/// forgotten first.
#[derive(Debug)]
pub(crate) struct Dedup {
    seen: HashSet<MessageId, BuildHasherDefault<IdHasher>>,
    order: VecDeque<MessageId>,
    capacity: usize,
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        Dedup {
            seen: HashSet::default(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records `id`; false when it was seen within the window (a duplicate).
    pub(crate) fn first_time(&mut self, id: MessageId) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_a_duplicate() {
        let mut d = Dedup::new(2);
        let (a, b, c) = (
            MessageId::random(),
            MessageId::random(),
            MessageId::random(),
        );
        assert!(d.first_time(a));
        assert!(!d.first_time(a));
        assert!(d.first_time(b));
        assert!(d.first_time(c), "a fell out of the window");
        assert!(d.first_time(a));
        assert!(!d.first_time(c));
    }
}
