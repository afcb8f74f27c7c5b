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

/// User plus system CPU time this process used, if the platform tells.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, fixed at 100 for user space.
    Some(Duration::from_millis((utime + stime) * 10))
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
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_time().unwrap() > before, "CPU time advances with work");
    }
}
