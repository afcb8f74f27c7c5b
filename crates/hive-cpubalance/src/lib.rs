//! # hive-cpubalance
//!
//! A CPU-bound task executor on real OS threads with four priority classes.
//!
//! - **Priorities**: `Critical` runs first; `High`, `Normal` and `Low` share
//!   the workers by weight (4:2:1); a task that has waited longer than the
//!   aging threshold goes ahead of younger work, so nothing starves.
//! - **Backpressure per class**: each class has its own bounded queue, so a
//!   flood of `Low` work never keeps `Critical` out. `submit` waits for room
//!   (or `submit_timeout`), `try_submit` hands the closure back with `Full`.
//! - **Placement**: the seed design's score `load * 0.7 + queue_fill * 0.3` from
//!   live counters, comparing two randomly chosen workers (no herding on a
//!   stale minimum); idle workers steal, most urgent class first.
//! - **Elastic**: a scaler samples each worker's busy time every 100 ms and
//!   scales between `min_workers` (cores) and `max_workers` (4 x cores); a
//!   retiring worker hands its queue back, so no task is lost.
//! - **Faults**: a panicking task resolves its handle with
//!   `HiveError::TaskPanicked` and the worker lives on (a dead worker thread
//!   is replaced). `shutdown` runs everything accepted, including submits
//!   racing it; `shutdown_now` resolves queued handles as `Cancelled`
//!   (counted per class); dropping the balancer never hangs.
//!
//! ```
//! use hive_cpubalance::{Balancer, BalancerConfig};
//! use hive_types::Priority;
//!
//! let balancer = Balancer::new(BalancerConfig::default())?;
//! let sum = balancer.submit(Priority::Normal, || (1..=100u64).sum::<u64>())?;
//! let alarm = balancer.submit(Priority::Critical, || "handled first")?;
//! assert_eq!(sum.join()?, 5050);
//! assert_eq!(alarm.join()?, "handled first");
//!
//! let oops = balancer.submit(Priority::Low, || -> u32 { panic!("bad input") })?;
//! assert!(oops.join().is_err()); // contained; the workers carry on
//! balancer.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Handles are futures too, so async code awaits them:
//!
//! ```
//! # use hive_cpubalance::{Balancer, BalancerConfig};
//! # use hive_types::Priority;
//! # async fn demo(balancer: &Balancer) -> hive_types::HiveResult<()> {
//! let digest = balancer
//!     .submit(Priority::High, || (0..1_000u32).fold(0u32, |h, x| h.rotate_left(5) ^ x))
//!     .map_err(hive_types::HiveError::from)?
//!     .await?;
//! # let _ = digest; Ok(()) }
//! ```
//!
//! Not for async I/O: blocking work is fine here (the scaler adds workers
//! when every worker is busy and work waits), but futures belong on an async
//! runtime.
#![cfg_attr(docsrs, feature(doc_cfg))] // docs.rs labels feature-gated items

mod balancer;
mod config;
mod cputime;
mod gate;
mod scaler;
mod shared;
mod slot;
mod stats;
mod sync;
mod task;
mod worker;

pub use balancer::Balancer;
pub use config::BalancerConfig;
pub use hive_types::{HiveError, HiveResult, PerPriority, Priority, Rejected};
pub use scaler::ScaleDecision;
pub use stats::{BalancerStats, ClassStats, WorkerStats};
pub use task::TaskHandle;
