//! The same five cases on hive-core, each used as its docs recommend:
//! async agents on the system's own runtime (two workers on this machine),
//! producers and callers as tasks on that runtime, default bounded
//! mailboxes (4,096 messages).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hive_core::{Agent, AgentId, Context, Message, StopMode, SwarmSystem, SyncContext};
use tokio::sync::{oneshot, Notify};

use crate::alloc::live_bytes;

const TICK: Bytes = Bytes::from_static(&[0u8; 8]);

/// Counts to `target`, then fires `done`.
pub struct Counter {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Agent for Counter {
    async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Cases 1 and 2: `producers` tasks send `n / producers` messages each to
/// one agent (`sync`: a closure agent on the CPU balancer instead).
pub async fn tell(system: &SwarmSystem, n: u64, producers: u64, sync: bool) -> Duration {
    let per = (n / producers).max(1);
    let target = per * producers;
    let (tx, rx) = oneshot::channel();
    let counter = if sync {
        let mut seen = 0u64;
        let mut done = Some(tx);
        system
            .spawn_sync(move |_m: Message, _ctx: &mut SyncContext<'_>| {
                seen += 1;
                if seen == target {
                    if let Some(tx) = done.take() {
                        let _ = tx.send(());
                    }
                }
            })
            .unwrap()
    } else {
        system
            .spawn(Counter {
                seen: 0,
                target,
                done: Some(tx),
            })
            .unwrap()
    };
    let to = counter.id();
    let start = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|_| {
            let sender = system.sender();
            tokio::spawn(async move {
                for _ in 0..per {
                    sender
                        .send_async(Message::new(AgentId::nil(), to, TICK))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    rx.await.unwrap();
    let elapsed = start.elapsed();
    counter.stop_async(StopMode::Drain).await.unwrap();
    elapsed
}

/// Replies with the request's payload.
pub struct Echo;

impl Agent for Echo {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        let _ = ctx.reply(&m, m.payload.clone()).await;
    }
}

/// Case 3: `k` sequential asks; each round trip in ns.
pub async fn ask(system: &SwarmSystem, k: u64) -> Vec<u64> {
    let echo = system.spawn(Echo).unwrap();
    let mut lat = Vec::with_capacity(k as usize);
    for _ in 0..k {
        let t = Instant::now();
        let r = system
            .ask_async(echo.id(), TICK, Duration::from_secs(10))
            .await
            .unwrap();
        lat.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(r);
    }
    echo.stop_async(StopMode::Drain).await.unwrap();
    lat
}

/// Counts down a shared counter; the last one wakes the waiter.
pub struct Leaf {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
    io: Duration,
}

impl Agent for Leaf {
    async fn handle(&mut self, _m: Message, _ctx: &mut Context) {
        if !self.io.is_zero() {
            tokio::time::sleep(self.io).await; // the external call
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// Case 4: spawns `n` agents, sends each one message, waits until all are
/// handled. Returns the time and live heap bytes per agent.
pub async fn spawn_n(system: &SwarmSystem, n: usize) -> (Duration, f64) {
    let remaining = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Notify::new());
    let mut refs = Vec::with_capacity(n);
    let base = live_bytes() as i64;
    let start = Instant::now();
    for _ in 0..n {
        refs.push(
            system
                .spawn(Leaf {
                    remaining: remaining.clone(),
                    done: done.clone(),
                    io: Duration::ZERO,
                })
                .unwrap(),
        );
    }
    let sender = system.sender();
    for r in &refs {
        sender
            .send_async(Message::new(AgentId::nil(), r, TICK))
            .await
            .unwrap();
    }
    sender.flush();
    done.notified().await;
    let elapsed = start.elapsed();
    let vec_bytes = (refs.capacity() * std::mem::size_of::<hive_core::AgentRef>()) as i64;
    let per_agent = (live_bytes() as i64 - base - vec_bytes) as f64 / n as f64;
    for r in &refs {
        r.stop_async(StopMode::Drain).await.unwrap();
    }
    (elapsed, per_agent)
}

/// Case 5: `agents` agents x `per_agent` messages, each handler awaiting a
/// 20 ms call.
pub async fn io_bound(system: &SwarmSystem, agents: usize, per_agent: usize) -> Duration {
    let remaining = Arc::new(AtomicUsize::new(agents * per_agent));
    let done = Arc::new(Notify::new());
    let refs: Vec<_> = (0..agents)
        .map(|_| {
            system
                .spawn(Leaf {
                    remaining: remaining.clone(),
                    done: done.clone(),
                    io: Duration::from_millis(20),
                })
                .unwrap()
        })
        .collect();
    let sender = system.sender();
    let start = Instant::now();
    for r in &refs {
        for _ in 0..per_agent {
            sender
                .send_async(Message::new(AgentId::nil(), r, TICK))
                .await
                .unwrap();
        }
    }
    sender.flush();
    done.notified().await;
    let elapsed = start.elapsed();
    for r in &refs {
        r.stop_async(StopMode::Drain).await.unwrap();
    }
    elapsed
}
