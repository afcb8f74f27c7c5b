//! What the kernel says about this process: resident memory and CPU time
//! (Linux `/proc/self`; elsewhere the figures are reported as unknown).

use std::time::Duration;

/// Resident set size in bytes, if the platform tells.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // The kernel's page size is 4 KiB on every platform hive targets; the
    // auxiliary vector would say otherwise on the rare 16/64 KiB kernels.
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| {
            auxv.chunks_exact(16).find_map(|entry| {
                let key = u64::from_ne_bytes(entry.get(..8)?.try_into().ok()?);
                let value = u64::from_ne_bytes(entry.get(8..16)?.try_into().ok()?);
                (key == 6).then_some(value) // AT_PAGESZ
            })
        })
        .unwrap_or(4096)
}

/// User plus system CPU time this process used, to the nanosecond where the
/// platform keeps it (`CLOCK_PROCESS_CPUTIME_ID`), if the platform tells.
#[cfg(unix)]
pub fn cpu_time() -> Option<Duration> {
    use rustix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::ProcessCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// User plus system CPU time this process used, if the platform tells.
#[cfg(not(unix))]
pub fn cpu_time() -> Option<Duration> {
    None
}

/// The most resident memory this process has had (`VmHWM`), if the
/// platform tells.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux: the figures are None by design
        }
        let rss = resident_bytes().unwrap();
        assert!(
            rss > 1 << 20,
            "a running test binary holds more than 1 MiB: {rss}"
        );
        let before = cpu_time().unwrap();
        let mut x = 0u64;
        // Spin until the clock moves: with nanosecond resolution that takes
        // microseconds, not the 10 ms of a USER_HZ tick.
        let moved = loop {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let now = cpu_time().unwrap();
            if now > before {
                break now - before;
            }
        };
        std::hint::black_box(x);
        assert!(moved < Duration::from_millis(5), "coarse clock: {moved:?}");
        // Peak memory: touch 64 MiB and free it: current memory drops, the
        // kernel's high-water mark keeps it (its per-thread counters may
        // lag by a few hundred KiB, hence the slack).
        let before = resident_bytes().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        drop(big);
        let after = resident_bytes().unwrap();
        let peak = peak_resident_bytes().unwrap();
        assert!(peak >= before + (56 << 20), "peak {peak}, before {before}");
        assert!(peak >= after + (32 << 20), "peak {peak}, after {after}");
    }
}
