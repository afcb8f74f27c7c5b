//! Behaviour of `Pool`: reset, bounds, sizing, statistics, threads, drop.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use hive_mempool::{Pool, PoolConfig, Recycle};

#[test]
fn returned_objects_are_reset() {
    let pool = Pool::<String>::new(PoolConfig::new("s", 8)).unwrap();
    {
        let mut s = pool.pull();
        s.push_str("the secret");
    }
    let s = pool.pull();
    assert!(s.is_empty());
    assert!(s.capacity() >= 10, "the allocation was reused");
    assert_eq!(pool.stats().hits, 1);
}

#[test]
fn oversized_objects_are_not_kept() {
    let config = PoolConfig::new("v", 8).max_retained_bytes(1024);
    let pool = Pool::<Vec<u8>>::new(config).unwrap();
    {
        let mut v = pool.pull();
        v.resize(10 << 20, 7); // 10 MiB
    }
    let stats = pool.stats();
    assert!(
        stats.bytes_retained <= 1024,
        "retained {}",
        stats.bytes_retained
    );
    assert!(pool.pull().capacity() <= 1024);

    // A type that cannot shrink is dropped instead.
    let config = PoolConfig::new("c", 8).max_retained_bytes(4);
    let pool = Pool::with_reset(config, || [0u64; 4], |a| *a = [0; 4]).unwrap();
    drop(pool.pull());
    let stats = pool.stats();
    assert_eq!((stats.discards, stats.idle), (1, 0));
}

#[test]
fn idle_objects_never_exceed_max_idle_across_threads() {
    let pool = Pool::<Vec<u8>>::new(PoolConfig::new("b", 10).thread_cache(8)).unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            std::thread::spawn(move || {
                let held: Vec<_> = (0..20).map(|_| pool.pull_owned()).collect();
                barrier.wait();
                drop(held);
                barrier.wait();
                pool.stats().idle
            })
        })
        .collect();
    for t in threads {
        let idle = t.join().unwrap();
        assert!(idle <= 10, "idle {idle} > max_idle 10");
    }
    let stats = pool.stats();
    assert!(stats.idle <= 10, "idle {} > 10", stats.idle);
    assert_eq!(stats.returns, 80);
    assert_eq!(stats.discards, 80 - stats.idle);
}

#[test]
fn grow_and_shrink_follow_the_rule_exactly() {
    let config = PoolConfig::new("rule", 1000)
        .initial_target(100)
        .prefill(10)
        .thread_cache(0);
    let pool = Pool::<String>::new(config).unwrap();
    assert_eq!(pool.stats().idle, 10);

    // 90 in use, 10 idle: utilisation 0.9 > 0.8, so 100 -> 125.
    let held: Vec<_> = (0..90).map(|_| pool.pull()).collect();
    let idle_before = pool.stats().idle;
    assert_eq!(idle_before, 0, "the prefilled 10 were reused");
    let held: Vec<_> = held
        .into_iter()
        .chain((0..10).map(|_| pool.pull()))
        .collect();
    // 100 in use, 0 idle: utilisation 1.0.
    assert_eq!(pool.maintain().target, 125);
    assert_eq!(pool.maintain().target, 157); // ceil(125 * 1.25)
    drop(held);
    // 0 in use, 100 idle: utilisation 0 < 0.25, so 157 -> floor(157 * 0.88) = 138.
    let s = pool.maintain();
    assert_eq!((s.idle, s.target), (100, 138));
    let mut target = 138;
    for _ in 0..5 {
        target = (target as f64 * 0.88).floor() as u64;
        assert_eq!(pool.maintain().target, target);
    }
    assert_eq!(target, 71);
    assert_eq!(
        pool.stats().idle,
        71,
        "idle objects above the target were freed"
    );
}

#[test]
fn memory_comes_back_down_after_a_burst() {
    let config = PoolConfig::new("burst", 500).min_idle(4).thread_cache(0);
    let pool = Pool::with_factory(config, || Vec::<u8>::with_capacity(4096)).unwrap();
    let burst: Vec<_> = (0..400).map(|_| pool.pull()).collect();
    drop(burst);
    let peak = pool.stats().bytes_retained;
    assert!(peak >= 400 * 4096);
    for _ in 0..60 {
        pool.maintain();
    }
    let after = pool.stats();
    assert_eq!(after.target, 4, "shrunk to min_idle");
    assert_eq!(after.idle, 4);
    assert!(after.bytes_retained <= 4 * 4096);
}

#[test]
fn auto_sizing_never_leaves_min_max() {
    let config = PoolConfig::new("bounds", 64).min_idle(8).thread_cache(4);
    let pool = Pool::<Vec<u32>>::new(config).unwrap();
    let mut rng = 12345u64;
    let mut held = Vec::new();
    for _ in 0..300 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let want = (rng >> 33) as usize % 120;
        while held.len() < want {
            held.push(pool.pull());
        }
        held.truncate(want);
        let s = pool.maintain();
        assert!((8..=64).contains(&s.target), "target {}", s.target);
        assert!(s.idle <= 64, "idle {}", s.idle);
    }
}

#[test]
fn stats_are_exact_under_four_threads() {
    let pool = Pool::<Vec<u8>>::new(PoolConfig::new("exact", 64)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..100_000 {
                    let mut g = pool.pull();
                    g.push(i as u8);
                    if (i + t) % 1000 == 0 {
                        kept.push(pool.pull_owned()); // a few held, then returned
                    }
                }
                drop(kept);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = pool.stats();
    let pulls = 4 * 100_000 + 4 * 100;
    assert_eq!(s.hits + s.misses, pulls);
    assert_eq!(s.returns, pulls);
    assert_eq!(s.in_use, 0);
    assert!(s.hit_ratio > 0.99, "hit ratio {}", s.hit_ratio);
}

#[test]
fn objects_return_on_another_thread() {
    let pool = Pool::<String>::new(PoolConfig::new("cross", 8)).unwrap();
    let mut guard = pool.pull_owned();
    guard.push_str("from main");
    std::thread::spawn(move || drop(guard)).join().unwrap();
    let s = pool.stats();
    assert_eq!((s.returns, s.in_use, s.idle), (1, 0, 1));
    // The returning thread exited, so its cache went back to the store.
    let again = pool.pull();
    assert!(again.is_empty());
    assert_eq!(pool.stats().hits, 1);
}

#[test]
fn thread_exit_gives_the_cache_back() {
    let pool = Pool::<Vec<u8>>::new(PoolConfig::new("exit", 32).thread_cache(16)).unwrap();
    let p = pool.clone();
    std::thread::spawn(move || {
        let held: Vec<_> = (0..5).map(|_| p.pull()).collect();
        drop(held); // five objects now in this thread's cache
    })
    .join()
    .unwrap();
    let held: Vec<_> = (0..5).map(|_| pool.pull()).collect();
    let s = pool.stats();
    assert_eq!(s.misses, 5, "only the other thread's first pulls missed");
    assert_eq!(s.hits, 5, "this thread reused the exited thread's objects");
    drop(held);
}

struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn pool_dropped_with_guards_out_leaks_nothing() {
    let live = Arc::new(AtomicUsize::new(0));
    let counter = live.clone();
    let create = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Tracked(counter.clone())
    };
    let pool = Pool::with_reset(PoolConfig::new("drop", 16), create, |_| {}).unwrap();
    let cached: Vec<_> = (0..6).map(|_| pool.pull()).collect();
    drop(cached);
    let out: Vec<_> = (0..4).map(|_| pool.pull_owned()).collect();
    let other = pool.pull_owned();
    let on_thread = std::thread::spawn(move || {
        let g = other;
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(g);
    });
    drop(pool);
    assert_eq!(
        live.load(Ordering::SeqCst),
        5,
        "only the objects still out live"
    );
    drop(out);
    on_thread.join().unwrap();
    assert_eq!(live.load(Ordering::SeqCst), 0, "every object was freed");
}

#[test]
fn detached_objects_leave_the_pool() {
    let pool = Pool::<String>::new(PoolConfig::new("detach", 4)).unwrap();
    let mut kept = pool.pull().detach();
    kept.push_str("mine now");
    let s = pool.stats();
    assert_eq!((s.detached, s.in_use, s.returns), (1, 0, 0));
    assert_eq!(kept, "mine now");
}

#[test]
fn the_recycle_seam_reuses_buffers() {
    let pool = Pool::<Vec<u8>>::new(PoolConfig::new("seam", 4)).unwrap();
    let seam: &dyn Recycle<Vec<u8>> = &pool;
    let mut buf = seam.take();
    buf.extend_from_slice(&[1, 2, 3]);
    seam.give(buf);
    assert!(seam.take().is_empty());
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.returns, s.in_use), (1, 1, 1, 1));
}

#[test]
fn stats_off_keeps_sizes_but_not_counters() {
    let pool = Pool::<String>::new(PoolConfig::new("quiet", 4).stats(false)).unwrap();
    drop(pool.pull());
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.returns), (0, 0, 0));
    assert_eq!(s.idle, 1);
}

#[test]
fn invalid_config_is_a_typed_error() {
    let err = Pool::<String>::new(PoolConfig::new("bad", 4).min_idle(9)).unwrap_err();
    assert!(err.to_string().contains("min_idle"), "{err}");
}
