//! kameo 0.22 anchors. Runs inside a tokio multi-thread runtime.
//! Actors: `#[derive(Actor)]` (Args = Self, Error = Infallible), spawned with
//! `Spawn::spawn` => default *bounded* mailbox, capacity 64 (crate-private `DEFAULT_MAILBOX_CAPACITY` in kameo/src/actor.rs).
//! `tell(..).await` waits for mailbox capacity (backpressure); `ask(..).await` waits for the reply.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::prelude::*; // Actor (trait + derive), ActorRef, Spawn, Message, Context
use tokio::sync::{oneshot, Notify};

use crate::alloc::live_bytes;

// ---------- case 1 & 2: tell N -> one counting actor ----------

#[derive(Actor)]
pub struct Counter {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
#[allow(dead_code)] // payload is carried, not read
pub struct Tick(pub u64);

impl Message<Tick> for Counter {
    type Reply = ();

    async fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Case 1: one producer tells `n` u64 messages to one actor.
pub async fn tell_1_to_1(n: u64) -> Duration {
    let (tx, rx) = oneshot::channel();
    let actor = Counter::spawn(Counter {
        seen: 0,
        target: n,
        done: Some(tx),
    });
    actor.wait_for_startup().await;

    let start = Instant::now();
    for i in 0..n {
        actor.tell(Tick(i)).await.expect("tell failed");
    }
    rx.await.expect("counter dropped");
    let elapsed = start.elapsed();

    actor.stop_gracefully().await.ok();
    actor.wait_for_shutdown().await;
    elapsed
}

/// Case 2: `producers` tokio tasks each tell `n / producers` messages to one actor.
pub async fn tell_m_to_1(n: u64, producers: u64) -> Duration {
    let per = n / producers;
    let (tx, rx) = oneshot::channel();
    let actor = Counter::spawn(Counter {
        seen: 0,
        target: per * producers,
        done: Some(tx),
    });
    actor.wait_for_startup().await;

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(producers as usize);
    for _ in 0..producers {
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                actor.tell(Tick(i)).await.expect("tell failed");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rx.await.expect("counter dropped");
    let elapsed = start.elapsed();

    actor.stop_gracefully().await.ok();
    actor.wait_for_shutdown().await;
    elapsed
}

// ---------- case 3: ask round trip ----------

#[derive(Actor)]
pub struct Echo;

#[derive(Debug)]
pub struct Ping(pub u64);

impl Message<Ping> for Echo {
    type Reply = u64;

    async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        msg.0
    }
}

/// Case 3: `k` sequential asks; returns each round-trip latency in ns.
pub async fn ask_round_trip(k: u64) -> Vec<u64> {
    let actor = Echo::spawn(Echo);
    actor.wait_for_startup().await;

    let mut lat = Vec::with_capacity(k as usize);
    for i in 0..k {
        let t = Instant::now();
        let r = actor.ask(Ping(i)).await.expect("ask failed");
        lat.push(t.elapsed().as_nanos() as u64);
        debug_assert_eq!(r, i);
    }

    actor.stop_gracefully().await.ok();
    actor.wait_for_shutdown().await;
    lat
}

// ---------- case 4: spawn many, one message each ----------

#[derive(Actor)]
pub struct Leaf {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

#[derive(Debug)]
pub struct Hit;

impl Message<Hit> for Leaf {
    type Reply = ();

    async fn handle(&mut self, _msg: Hit, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// Case 4: spawn `n` actors, tell each one message, wait until all handled.
/// Returns (elapsed, live heap bytes per actor while all `n` are alive and idle).
pub async fn spawn_n(n: usize) -> (Duration, f64) {
    let remaining = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Notify::new());
    let mut refs: Vec<ActorRef<Leaf>> = Vec::with_capacity(n);
    let base = live_bytes() as i64;

    let start = Instant::now();
    for _ in 0..n {
        refs.push(Leaf::spawn(Leaf {
            remaining: remaining.clone(),
            done: done.clone(),
        }));
    }
    for r in &refs {
        r.tell(Hit).await.expect("tell failed");
    }
    done.notified().await;
    let elapsed = start.elapsed();

    let vec_bytes = (refs.capacity() * std::mem::size_of::<ActorRef<Leaf>>()) as i64;
    let per_actor = (live_bytes() as i64 - base - vec_bytes) as f64 / n as f64;

    for r in &refs {
        r.stop_gracefully().await.ok();
    }
    for r in &refs {
        r.wait_for_shutdown().await;
    }
    (elapsed, per_actor)
}

// ---------- case 5: I/O-bound handlers ----------

#[derive(Actor)]
pub struct IoActor {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

#[derive(Debug)]
pub struct Call;

impl Message<Call> for IoActor {
    type Reply = ();

    async fn handle(&mut self, _msg: Call, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        // external call stand-in; kameo awaits the handler before taking the next message
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// Case 5: `actors` actors x `per_actor` messages, each handler sleeps 20 ms.
pub async fn io_bound(actors: usize, per_actor: usize) -> Duration {
    let remaining = Arc::new(AtomicUsize::new(actors * per_actor));
    let done = Arc::new(Notify::new());
    let refs: Vec<ActorRef<IoActor>> = (0..actors)
        .map(|_| {
            IoActor::spawn(IoActor {
                remaining: remaining.clone(),
                done: done.clone(),
            })
        })
        .collect();

    let start = Instant::now();
    for r in &refs {
        for _ in 0..per_actor {
            // per_actor (10) <= mailbox capacity (64), so this never parks
            r.tell(Call).await.expect("tell failed");
        }
    }
    done.notified().await;
    let elapsed = start.elapsed();

    for r in &refs {
        r.stop_gracefully().await.ok();
    }
    for r in &refs {
        r.wait_for_shutdown().await;
    }
    elapsed
}
