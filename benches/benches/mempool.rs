//! hive-mempool beside plain allocation, object-pool 0.6 and
//! lockfree-object-pool 0.1 (`LinearObjectPool`), in the same run.
//!
//! Every case does the same work per iteration: take an object, write one
//! element, give it back (drop). Anchors that do not reset on return are
//! cleared by the user, as their docs advise.
#![allow(missing_docs, clippy::unwrap_used)] // bench harness code

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hive_mempool::{Pool, PoolConfig, Recyclable, Uuid};
use lockfree_object_pool::LinearObjectPool;

/// Something to pool: how to make one, and how to use it once.
trait Subject: Send + Sync + 'static + Sized {
    fn make() -> Self;
    fn touch(&mut self);
    fn clear(&mut self);
}

macro_rules! vec_subject {
    ($name:ident, $elem:ty, $cap:expr, $value:expr) => {
        struct $name(Vec<$elem>);
        impl Subject for $name {
            fn make() -> Self {
                $name(Vec::with_capacity($cap))
            }
            fn touch(&mut self) {
                self.0.push($value);
            }
            fn clear(&mut self) {
                self.0.clear();
            }
        }
        impl Recyclable for $name {
            fn reset(&mut self) {
                self.0.clear();
            }
            fn retained_bytes(&self) -> usize {
                self.0.retained_bytes()
            }
            fn shrink_to_bytes(&mut self, max: usize) -> bool {
                self.0.shrink_to_bytes(max)
            }
        }
    };
}

vec_subject!(Vec1K, u8, 1024, 7u8);
vec_subject!(Vec64K, u8, 64 * 1024, 7u8);
vec_subject!(UuidList, Uuid, 16, Uuid::nil());

struct Str(String);
impl Subject for Str {
    fn make() -> Self {
        Str(String::with_capacity(256))
    }
    fn touch(&mut self) {
        self.0.push('x');
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}
impl Recyclable for Str {
    fn reset(&mut self) {
        self.0.clear();
    }
    fn retained_bytes(&self) -> usize {
        self.0.capacity()
    }
    fn shrink_to_bytes(&mut self, max: usize) -> bool {
        self.0.shrink_to_bytes(max)
    }
}

fn hive_pool<S: Subject + Recyclable>(stats: bool) -> Pool<S> {
    let config = PoolConfig::new("bench", 1024)
        .max_retained_bytes(1 << 20)
        .stats(stats);
    Pool::with_factory(config, S::make).unwrap()
}

/// The single-thread cases of one subject, all in one group.
fn single_thread<S: Subject + Recyclable>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group(format!("mempool.{name}"));
    let hive = hive_pool::<S>(true);
    group.bench_function("hive", |b| {
        b.iter(|| {
            let mut g = hive.pull();
            g.touch();
            black_box(&mut *g);
        })
    });
    let quiet = hive_pool::<S>(false);
    group.bench_function("hive_stats_off", |b| {
        b.iter(|| {
            let mut g = quiet.pull();
            g.touch();
            black_box(&mut *g);
        })
    });
    group.bench_function("malloc", |b| {
        b.iter(|| {
            let mut s = S::make();
            s.touch();
            black_box(&mut s);
        })
    });
    let op = object_pool::Pool::new(1024, S::make);
    group.bench_function("object_pool", |b| {
        b.iter(|| {
            let mut g = op.pull(S::make);
            g.clear();
            g.touch();
            black_box(&mut *g);
        })
    });
    let lf = LinearObjectPool::new(S::make, S::clear);
    group.bench_function("lockfree_object_pool", |b| {
        b.iter(|| {
            let mut g = lf.pull();
            g.touch();
            black_box(&mut *g);
        })
    });
    group.finish();
    let s = hive.stats();
    assert!(
        s.hit_ratio >= 0.99,
        "steady-state hit ratio {}",
        s.hit_ratio
    );
    assert!(s.bytes_retained <= 1024 * (1 << 20));
}

/// Runs `op` `iters` times on each of `threads` threads at once; returns the
/// slowest thread's time, so the figure is time per operation per thread.
fn per_thread(threads: usize, iters: u64, op: impl Fn() + Send + Sync + 'static) -> Duration {
    let op = Arc::new(op);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (op, start) = (op.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                for _ in 0..iters {
                    op();
                }
                t.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap_or_default()
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("mempool.vec_1k_threads");
    for threads in [1usize, 2] {
        let hive = hive_pool::<Vec1K>(true);
        group.bench_function(BenchmarkId::new("hive", threads), |b| {
            b.iter_custom(|iters| {
                let pool = hive.clone();
                per_thread(threads, iters, move || {
                    let mut g = pool.pull();
                    g.touch();
                    black_box(&mut *g);
                })
            })
        });
        group.bench_function(BenchmarkId::new("malloc", threads), |b| {
            b.iter_custom(|iters| {
                per_thread(threads, iters, || {
                    let mut s = Vec1K::make();
                    s.touch();
                    black_box(&mut s);
                })
            })
        });
        let op = Arc::new(object_pool::Pool::new(1024, Vec1K::make));
        group.bench_function(BenchmarkId::new("object_pool", threads), |b| {
            b.iter_custom(|iters| {
                let op = op.clone();
                per_thread(threads, iters, move || {
                    let mut g = op.pull(Vec1K::make);
                    g.clear();
                    g.touch();
                    black_box(&mut *g);
                })
            })
        });
        let lf = Arc::new(LinearObjectPool::new(Vec1K::make, Vec1K::clear));
        group.bench_function(BenchmarkId::new("lockfree_object_pool", threads), |b| {
            b.iter_custom(|iters| {
                let lf = lf.clone();
                per_thread(threads, iters, move || {
                    let mut g = lf.pull();
                    g.touch();
                    black_box(&mut *g);
                })
            })
        });
    }
    group.finish();
}

/// Pull on one thread, return on another (through a bounded channel).
fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("mempool.vec_1k_cross_thread");
    let hive = hive_pool::<Vec1K>(true);
    group.bench_function("hive", |b| {
        b.iter_custom(|iters| hand_over(iters, || hive.pull_owned()))
    });
    group.bench_function("malloc", |b| {
        b.iter_custom(|iters| hand_over(iters, Vec1K::make))
    });
    let lf = Arc::new(LinearObjectPool::new(Vec1K::make, Vec1K::clear));
    group.bench_function("lockfree_object_pool", |b| {
        b.iter_custom(|iters| hand_over(iters, || lf.pull_owned()))
    });
    group.finish();
}

fn hand_over<G: Send + 'static>(iters: u64, mut take: impl FnMut() -> G) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<G>>(64);
    let dropper = std::thread::spawn(move || rx.iter().for_each(drop));
    let start = Instant::now();
    let mut batch = Vec::with_capacity(64);
    for _ in 0..iters {
        batch.push(take());
        if batch.len() == 64 {
            tx.send(std::mem::replace(&mut batch, Vec::with_capacity(64)))
                .unwrap();
        }
    }
    tx.send(batch).unwrap();
    drop(tx);
    dropper.join().unwrap();
    start.elapsed()
}

fn subjects(c: &mut Criterion) {
    single_thread::<Vec1K>(c, "vec_1k");
    single_thread::<Vec64K>(c, "vec_64k");
    single_thread::<Str>(c, "string");
    single_thread::<UuidList>(c, "uuid_list_16");
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = subjects, two_threads, cross_thread
}
criterion_main!(benches);
