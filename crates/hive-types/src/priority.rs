//! Message and task priorities.

use std::fmt;
use std::str::FromStr;

/// How urgent a message or task is. Ordered: `Low < Normal < High < Critical`.
///
/// The communicator never holds a `Critical` message back for batching, and
/// the CPU balancer runs `Critical` tasks before any other class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[repr(u8)]
pub enum Priority {
    /// Background work that may wait.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Ahead of normal traffic.
    High = 2,
    /// Never delayed by batching; runs before everything else.
    Critical = 3,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// Number of priority classes.
    pub const COUNT: usize = 4;

    /// Position in [`Priority::ALL`] (0 for `Low` .. 3 for `Critical`), for
    /// indexing per-class arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The priority at `index` in [`Priority::ALL`], if any.
    pub const fn from_index(index: usize) -> Option<Priority> {
        match index {
            0 => Some(Priority::Low),
            1 => Some(Priority::Normal),
            2 => Some(Priority::High),
            3 => Some(Priority::Critical),
            _ => None,
        }
    }

    /// Lower-case name, as used in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// The next class up (saturating at `Critical`), used by aging.
    pub const fn promoted(self) -> Priority {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            Priority::High | Priority::Critical => Priority::Critical,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string names no priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a priority: use one of low, normal, high, critical")]
pub struct ParsePriorityError(String);

impl FromStr for Priority {
    type Err = ParsePriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParsePriorityError(s.chars().take(32).collect()))
    }
}

/// One value per priority class, indexed by [`Priority`]: queues per class,
/// counters per class, capacities per class.
///
/// ```
/// use hive_types::{PerPriority, Priority};
///
/// let mut waiting: PerPriority<u32> = PerPriority::default();
/// waiting[Priority::High] += 2;
/// assert_eq!(waiting[Priority::High], 2);
/// assert_eq!(waiting.iter().map(|(_, n)| n).sum::<u32>(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PerPriority<T>(pub [T; Priority::COUNT]);

impl<T> PerPriority<T> {
    /// Each class's value from `f`.
    pub fn from_fn(mut f: impl FnMut(Priority) -> T) -> Self {
        PerPriority(Priority::ALL.map(&mut f))
    }

    /// `(class, value)` pairs, lowest class first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Priority, &T)> + '_ {
        Priority::ALL.into_iter().zip(self.0.iter())
    }

    /// The values, lowest class first.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.0.iter()
    }

    /// The values, mutably, lowest class first.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> + '_ {
        self.0.iter_mut()
    }
}

impl<T> std::ops::Index<Priority> for PerPriority<T> {
    type Output = T;

    #[inline]
    fn index(&self, p: Priority) -> &T {
        let [low, normal, high, critical] = &self.0;
        match p {
            Priority::Low => low,
            Priority::Normal => normal,
            Priority::High => high,
            Priority::Critical => critical,
        }
    }
}

impl<T> std::ops::IndexMut<Priority> for PerPriority<T> {
    #[inline]
    fn index_mut(&mut self, p: Priority) -> &mut T {
        let [low, normal, high, critical] = &mut self.0;
        match p {
            Priority::Low => low,
            Priority::Normal => normal,
            Priority::High => high,
            Priority::Critical => critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_is_low_to_critical() {
        assert!(Priority::Low < Priority::Normal);
        assert!(Priority::Normal < Priority::High);
        assert!(Priority::High < Priority::Critical);
        let mut shuffled = vec![
            Priority::High,
            Priority::Low,
            Priority::Critical,
            Priority::Normal,
        ];
        shuffled.sort();
        assert_eq!(shuffled, Priority::ALL);
    }

    #[test]
    fn index_round_trips_and_default_is_normal() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_index(p.index()), Some(p));
            assert_eq!(p.to_string().parse::<Priority>().unwrap(), p);
        }
        assert_eq!(Priority::from_index(4), None);
        assert_eq!(Priority::default(), Priority::Normal);
    }

    #[test]
    fn promotion_climbs_and_saturates() {
        assert_eq!(Priority::Low.promoted(), Priority::Normal);
        assert_eq!(Priority::High.promoted(), Priority::Critical);
        assert_eq!(Priority::Critical.promoted(), Priority::Critical);
        assert!("urgent"
            .parse::<Priority>()
            .unwrap_err()
            .to_string()
            .contains("one of"));
    }
}
