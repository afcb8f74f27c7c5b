//! A worker thread's CPU time, from the kernel's per-thread scheduler
//! statistics (Linux `/proc`, nanoseconds); elsewhere it is unknown.
//!
//! Time a worker is merely not parked (spinning, or runnable while another
//! thread has the core) is not CPU time: eight workers on two cores cannot
//! each be 100% loaded, and this clock says so.

use std::time::{Duration, Instant};

/// The kernel's id of a thread and when it started working.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OsThread {
    tid: u64,
    started: Instant,
}

impl OsThread {
    /// The calling thread, if the platform names it.
    pub(crate) fn current() -> Option<Self> {
        // "/proc/thread-self" links to "<pid>/task/<tid>".
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        let tid = link.file_name()?.to_str()?.parse().ok()?;
        Some(OsThread {
            tid,
            started: Instant::now(),
        })
    }

    /// CPU time the thread used so far, and how long ago it started.
    pub(crate) fn cpu_time(&self) -> Option<(Duration, Duration)> {
        let path = format!("/proc/self/task/{}/schedstat", self.tid);
        let stat = std::fs::read_to_string(path).ok()?;
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        Some((Duration::from_nanos(ns), self.started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads the kernel's clock of the interpreter's own thread"
    )]
    fn a_spinning_thread_uses_cpu_and_a_sleeping_one_does_not() {
        if !std::path::Path::new("/proc/thread-self").exists() {
            return; // not Linux: unknown by design
        }
        let me = OsThread::current().unwrap();
        let (before, _) = me.cpu_time().unwrap();
        let mut x = 0u64;
        // Spin until the clock moves: it has nanosecond resolution, so this
        // takes microseconds, not the 10 ms of a USER_HZ tick.
        let moved = loop {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let (now, _) = me.cpu_time().unwrap();
            if now > before {
                break now - before;
            }
        };
        std::hint::black_box(x);
        assert!(moved < Duration::from_millis(5), "coarse clock: {moved:?}");
        let (before, _) = me.cpu_time().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let (after, age) = me.cpu_time().unwrap();
        assert!(
            after - before < Duration::from_millis(25),
            "sleeping is not CPU"
        );
        assert!(age >= Duration::from_millis(50));
    }
}
