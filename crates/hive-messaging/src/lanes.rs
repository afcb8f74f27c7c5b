//! Priority lanes: the messages a consumer has taken from its inbox, one
//! FIFO lane per priority.
//!
//! The consumer hands out the highest lane first (`Critical`, then `High`,
//! `Normal`, `Low`), in arrival order within a lane, so a sender's messages
//! of one priority keep their order. Aging keeps the lower lanes moving:
//! once the oldest message of the `Low` (or else `Normal`) lane has waited
//! longer than the aging threshold while higher lanes are served, every
//! other message handed out comes from that lane until it has caught up.
//!
//! A lane is a queue of the batches that arrived, not of messages: a batch
//! of one priority (the usual case) joins its lane without its messages
//! being moved. Only the consumer touches its lanes, so none of this is
//! shared or locked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hive_types::{Message, PerPriority, Priority};

use crate::batch::Batch;

/// How many messages are handed out between two looks at the clock for
/// aging (a clock read costs about as much as handing out a message).
const AGING_CHECK_EVERY: u32 = 16;

/// One lane: its batches (when each started, its messages), oldest first.
#[derive(Default)]
struct Lane {
    batches: VecDeque<(Instant, VecDeque<Message>)>,
}

/// One consumer's read-ahead; see the module docs.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: PerPriority<Lane>,
    len: usize,
    /// Bit `p` is set while lane `p` holds messages.
    mask: u8,
    /// Handed out since the clock was last read for aging.
    unchecked: u32,
    /// A lower lane that waited past the threshold: it gets every other pick.
    starving: Option<Priority>,
    aged_turn: bool,
    /// Buffers of batches handed out entirely, for the consumer to recycle.
    spent: Vec<VecDeque<Message>>,
}

impl Lanes {
    /// Messages held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether a lane holds a message above `p`.
    #[cfg(test)]
    fn has_above(&self, p: Priority) -> bool {
        self.mask >> (p.index() + 1) != 0
    }

    /// When the oldest batch held started.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.lanes
            .values()
            .filter_map(|l| l.batches.front().map(|(at, _)| *at))
            .min()
    }

    /// Takes `batch`'s messages into their lanes. A batch of one priority
    /// joins its lane whole; a mixed one is split.
    pub(crate) fn absorb(&mut self, mut batch: Batch) {
        let n = batch.len();
        if n == 0 {
            self.spent.push(batch.messages);
            return;
        }
        self.len += n;
        if batch.top_priority == batch.low_priority {
            let p = batch.top_priority;
            self.mask |= 1 << p.index();
            self.lanes[p]
                .batches
                .push_back((batch.started, batch.messages));
            return;
        }
        let mut split: PerPriority<VecDeque<Message>> = PerPriority::default();
        for m in batch.messages.drain(..) {
            split[m.priority].push_back(m);
        }
        self.spent.push(batch.messages);
        for (p, messages) in Priority::ALL.into_iter().zip(split.0) {
            if !messages.is_empty() {
                self.mask |= 1 << p.index();
                self.lanes[p].batches.push_back((batch.started, messages));
            }
        }
    }

    /// The next message by lane order and aging.
    #[inline]
    pub(crate) fn pop(&mut self, aging: Duration) -> Option<Message> {
        if self.mask == 0 {
            return None;
        }
        let top = top_lane(self.mask);
        let p = self.lower_turn(top, aging).unwrap_or(top);
        let lane = &mut self.lanes[p];
        let (_, front) = lane.batches.front_mut()?;
        let message = front.pop_front()?;
        self.len -= 1;
        if front.is_empty() {
            if let Some((_, spent)) = lane.batches.pop_front() {
                self.spent.push(spent);
            }
            if lane.batches.is_empty() {
                self.mask &= !(1 << p.index());
                if self.starving == Some(p) {
                    self.starving = None;
                }
            }
        }
        Some(message)
    }

    /// Whether this pick goes to a starving lower lane (and which).
    #[inline]
    fn lower_turn(&mut self, top: Priority, aging: Duration) -> Option<Priority> {
        // Lanes below `top` that hold mail; Critical and High never age.
        let below = self.mask & ((1u8 << top.index()) - 1) & 0b011;
        if below == 0 {
            self.starving = None;
            return None;
        }
        if self.starving.is_none() {
            self.unchecked += 1;
            if self.unchecked < AGING_CHECK_EVERY {
                return None;
            }
            self.unchecked = 0;
            let now = Instant::now();
            self.starving = [Priority::Low, Priority::Normal]
                .into_iter()
                .filter(|p| below & (1 << p.index()) != 0)
                .find(|p| {
                    self.lanes[*p]
                        .batches
                        .front()
                        .is_some_and(|(at, _)| now.saturating_duration_since(*at) > aging)
                });
        }
        let starving = self.starving?;
        self.aged_turn = !self.aged_turn;
        self.aged_turn.then_some(starving)
    }

    /// Buffers emptied since the last call (to recycle).
    pub(crate) fn take_spent(&mut self) -> impl Iterator<Item = VecDeque<Message>> + '_ {
        self.spent.drain(..)
    }

    /// Every message held, lane by lane from the top (for draining).
    pub(crate) fn drain(&mut self) -> Vec<Message> {
        let mut all = Vec::with_capacity(self.len);
        for p in Priority::ALL.into_iter().rev() {
            for (_, mut batch) in self.lanes[p].batches.drain(..) {
                all.extend(batch.drain(..));
                self.spent.push(batch);
            }
        }
        self.len = 0;
        self.mask = 0;
        self.starving = None;
        all
    }
}

fn top_lane(mask: u8) -> Priority {
    let index = 7 - mask.leading_zeros() as usize;
    Priority::from_index(index).unwrap_or(Priority::Critical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_types::AgentId;

    fn batch(started: Instant, priorities: &[Priority]) -> Batch {
        let mut b = Batch::new(VecDeque::new(), started);
        for (i, p) in priorities.iter().enumerate() {
            b.push(
                Message::builder(AgentId::nil(), AgentId::nil())
                    .priority(*p)
                    .payload(vec![i as u8])
                    .build(),
            );
        }
        b
    }

    #[test]
    fn higher_lanes_first_fifo_within_a_lane() {
        use Priority::*;
        let mut lanes = Lanes::default();
        let now = Instant::now();
        lanes.absorb(batch(now, &[Low, Normal, Low, Critical, High, Normal]));
        let order: Vec<(Priority, u8)> = std::iter::from_fn(|| lanes.pop(Duration::from_secs(60)))
            .map(|m| (m.priority, m.payload[0]))
            .collect();
        assert_eq!(
            order,
            vec![
                (Critical, 3),
                (High, 4),
                (Normal, 1),
                (Normal, 5),
                (Low, 0),
                (Low, 2)
            ]
        );
        assert_eq!(lanes.len(), 0);
        assert_eq!(lanes.take_spent().count(), 5, "the batch and its 4 parts");
    }

    #[test]
    fn a_uniform_batch_joins_its_lane_whole() {
        let mut lanes = Lanes::default();
        lanes.absorb(batch(Instant::now(), &[Priority::High; 3]));
        assert!(lanes.has_above(Priority::Normal));
        assert!(!lanes.has_above(Priority::High));
        assert_eq!(lanes.len(), 3);
        assert_eq!(lanes.take_spent().count(), 0);
        for _ in 0..3 {
            lanes.pop(Duration::from_secs(60)).unwrap();
        }
        assert_eq!(lanes.take_spent().count(), 1, "its buffer, once emptied");
    }

    #[test]
    fn an_old_low_lane_gets_every_other_pick() {
        let mut lanes = Lanes::default();
        let long_ago = Instant::now() - Duration::from_secs(1);
        lanes.absorb(batch(long_ago, &[Priority::Low; 10]));
        lanes.absorb(batch(Instant::now(), &[Priority::High; 100]));
        let picks: Vec<Priority> = (0..60)
            .filter_map(|_| lanes.pop(Duration::from_millis(50)))
            .map(|m| m.priority)
            .collect();
        let low = picks.iter().filter(|p| **p == Priority::Low).count();
        assert_eq!(low, 10, "the starving lane caught up: {picks:?}");
        // Without aging (a long threshold) Low waits for High to finish.
        let mut lanes = Lanes::default();
        lanes.absorb(batch(long_ago, &[Priority::Low; 10]));
        lanes.absorb(batch(Instant::now(), &[Priority::High; 100]));
        let first: Vec<Priority> = (0..100)
            .filter_map(|_| lanes.pop(Duration::from_secs(60)))
            .map(|m| m.priority)
            .collect();
        assert!(first.iter().all(|p| *p == Priority::High));
    }
}
