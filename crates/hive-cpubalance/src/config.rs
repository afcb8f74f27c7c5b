//! Balancer configuration.

use std::time::Duration;

use hive_types::{HiveError, HiveResult, PerPriority, Priority};

/// How a [`Balancer`](crate::Balancer) runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BalancerConfig {
    /// Workers kept even when idle (default: the number of cores).
    pub min_workers: usize,
    /// Most workers the scaler may start (default: 4 x cores).
    pub max_workers: usize,
    /// Workers that may start beyond `max_workers` while others wait in
    /// [`Balancer::blocking`](crate::Balancer::blocking) (default: 4 x
    /// cores), so tasks that wait (for room, for a reply) cannot hold every
    /// worker while the work they wait for sits queued.
    pub blocking_workers: usize,
    /// Queued tasks each class may hold (`config.queue_capacity[Priority::Low]`).
    /// Classes never share room, so a flood of `Low` work cannot keep
    /// `Critical` out.
    pub queue_capacity: PerPriority<usize>,
    /// How often the scaler samples busy time and scales; `None` runs no
    /// scaler thread (call [`Balancer::rebalance`](crate::Balancer::rebalance)).
    pub scale_interval: Option<Duration>,
    /// A queued task older than this is taken before younger work of
    /// higher (non-critical) classes, so nothing starves.
    pub aging_threshold: Duration,
    /// Shares of `High`, `Normal` and `Low` when all three have work.
    pub weights: [u32; 3],
    /// Add a worker when every worker was busy at least this fraction of
    /// the interval and work is queued.
    pub scale_up_busy: f64,
    /// Count an interval as idle when mean busy time is below this fraction.
    pub scale_down_busy: f64,
    /// Retire a worker after this many idle intervals in a row.
    pub scale_down_after: u32,
    /// Record queue waits per class (two clock reads per task).
    pub stats: bool,
    /// Place tasks by the load score (two random choices); off places them
    /// round robin. An ablation switch: measure what the score buys.
    pub load_aware: bool,
    /// Honour priorities; off runs every task as `Normal` (FIFO with
    /// stealing). An ablation switch.
    pub priorities: bool,
    /// Prefix of worker thread names.
    pub thread_name: String,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        let cores = num_cpus::get().max(1);
        BalancerConfig {
            min_workers: cores,
            max_workers: 4 * cores,
            blocking_workers: 4 * cores,
            queue_capacity: PerPriority([65_536, 65_536, 65_536, 4_096]),
            scale_interval: Some(Duration::from_millis(100)),
            aging_threshold: Duration::from_millis(50),
            weights: [4, 2, 1],
            scale_up_busy: 0.90,
            scale_down_busy: 0.20,
            scale_down_after: 10,
            stats: true,
            load_aware: true,
            priorities: true,
            thread_name: "hive-cpu".into(),
        }
    }
}

impl BalancerConfig {
    /// Sets the worker range.
    pub fn workers(mut self, min: usize, max: usize) -> Self {
        self.min_workers = min;
        self.max_workers = max;
        self
    }

    /// Sets how many workers may start beyond `max_workers` while others
    /// wait in [`Balancer::blocking`](crate::Balancer::blocking).
    pub fn blocking_workers(mut self, n: usize) -> Self {
        self.blocking_workers = n;
        self
    }

    /// Sets one class's queue capacity.
    pub fn queue_capacity(mut self, class: Priority, capacity: usize) -> Self {
        self.queue_capacity[class] = capacity;
        self
    }

    /// Sets the scale interval (`None`: no scaler thread).
    pub fn scale_interval(mut self, interval: Option<Duration>) -> Self {
        self.scale_interval = interval;
        self
    }

    /// Sets the aging threshold.
    pub fn aging_threshold(mut self, threshold: Duration) -> Self {
        self.aging_threshold = threshold;
        self
    }

    /// Turns queue-wait statistics on or off.
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = on;
        self
    }

    /// Checks the values; the error names the field and the accepted range.
    pub fn validate(&self) -> HiveResult<()> {
        if self.min_workers == 0 {
            return Err(HiveError::config("min_workers", "must be at least 1"));
        }
        if self.max_workers < self.min_workers {
            return Err(HiveError::config("max_workers", "must be >= min_workers"));
        }
        if self.max_workers > 4096 {
            return Err(HiveError::config("max_workers", "must be at most 4096"));
        }
        if self.blocking_workers > 4096 {
            return Err(HiveError::config(
                "blocking_workers",
                "must be at most 4096",
            ));
        }
        if self.queue_capacity.values().any(|&c| c == 0) {
            return Err(HiveError::config(
                "queue_capacity",
                "every class needs room for at least 1 task",
            ));
        }
        if self.weights.contains(&0) {
            return Err(HiveError::config(
                "weights",
                "every class needs a share of at least 1",
            ));
        }
        if !(0.0 < self.scale_down_busy && self.scale_down_busy < self.scale_up_busy)
            || self.scale_up_busy > 1.0
        {
            return Err(HiveError::config(
                "scale_up_busy",
                "need 0 < scale_down_busy < scale_up_busy <= 1 (a gap stops flapping)",
            ));
        }
        if self.scale_interval.is_some_and(|i| i.is_zero()) {
            return Err(HiveError::config(
                "scale_interval",
                "must be above zero (or None for no scaler)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cores() {
        let c = BalancerConfig::default();
        assert_eq!(c.max_workers, 4 * c.min_workers);
        assert_eq!(c.scale_interval, Some(Duration::from_millis(100)));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = BalancerConfig::default()
            .workers(4, 2)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("max_workers"), "{err}");
        let c = BalancerConfig::default().queue_capacity(Priority::Low, 0);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("queue_capacity"));
        let c = BalancerConfig {
            scale_down_busy: 0.95,
            ..BalancerConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
