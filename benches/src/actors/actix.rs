//! actix 0.13 anchors. Each function builds its own `actix::System` (actix-rt 2: a tokio
//! current-thread runtime + LocalSet) and blocks on it; all actors started with
//! `Actor::start()` live on the System arbiter thread (single-threaded).
//! Mailbox: bounded, default capacity 16 (private `mailbox::DEFAULT_CAPACITY`; change with `ctx.set_mailbox_capacity(n)`).
//! `do_send` (tell) ignores the capacity and always enqueues (=> effectively unbounded);
//! `send(..).await` (ask) respects capacity and resolves with the handler's result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{oneshot, Notify};

use crate::alloc::live_bytes;

// ---------- case 1 & 2: tell N -> one counting actor ----------

pub struct Counter {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
#[allow(dead_code)] // payload is carried, not read
pub struct Tick(pub u64);

impl Handler<Tick> for Counter {
    type Result = ();

    fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self>) {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Case 1: one producer (a task on the same System arbiter as the actor) `do_send`s `n`
/// messages. The producer never yields inside the loop, so all `n` are queued before the
/// actor runs (do_send bypasses the 16-slot bound).
pub fn tell_1_to_1(n: u64) -> Duration {
    System::new().block_on(async move {
        let (tx, rx) = oneshot::channel();
        let addr = Counter {
            seen: 0,
            target: n,
            done: Some(tx),
        }
        .start();

        let start = Instant::now();
        for i in 0..n {
            addr.do_send(Tick(i));
        }
        rx.await.expect("counter dropped");
        start.elapsed()
    })
}

/// Case 2: `producers` OS threads each `do_send` `n / producers` messages to one actor
/// living on the System arbiter thread. (`Addr` is `Send + Sync`; `do_send` is sync.)
pub fn tell_m_to_1(n: u64, producers: u64) -> Duration {
    let per = n / producers;
    System::new().block_on(async move {
        let (tx, rx) = oneshot::channel();
        let addr = Counter {
            seen: 0,
            target: per * producers,
            done: Some(tx),
        }
        .start();

        let start = Instant::now();
        let threads: Vec<_> = (0..producers)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        addr.do_send(Tick(i));
                    }
                })
            })
            .collect();
        rx.await.expect("counter dropped");
        let elapsed = start.elapsed();
        for t in threads {
            t.join().unwrap();
        }
        elapsed
    })
}

// ---------- case 3: ask round trip ----------

pub struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
pub struct Ping(pub u64);

impl Handler<Ping> for Echo {
    type Result = u64;

    fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> u64 {
        msg.0
    }
}

/// Case 3: `k` sequential `addr.send(..).await`s from a task on the same arbiter.
pub fn ask_round_trip(k: u64) -> Vec<u64> {
    System::new().block_on(async move {
        let addr = Echo.start();
        let mut lat = Vec::with_capacity(k as usize);
        for i in 0..k {
            let t = Instant::now();
            let r = addr.send(Ping(i)).await.expect("mailbox error");
            lat.push(t.elapsed().as_nanos() as u64);
            debug_assert_eq!(r, i);
        }
        lat
    })
}

// ---------- case 4: spawn many, one message each ----------

pub struct Leaf {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Actor for Leaf {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Hit;

impl Handler<Hit> for Leaf {
    type Result = ();

    fn handle(&mut self, _msg: Hit, _ctx: &mut Context<Self>) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// Case 4: start `n` actors on the System arbiter, `do_send` each one message, wait until
/// all handled. Returns (elapsed, live heap bytes per actor).
pub fn spawn_n(n: usize) -> (Duration, f64) {
    System::new().block_on(async move {
        let remaining = Arc::new(AtomicUsize::new(n));
        let done = Arc::new(Notify::new());
        let mut addrs: Vec<Addr<Leaf>> = Vec::with_capacity(n);
        let base = live_bytes() as i64;

        let start = Instant::now();
        for _ in 0..n {
            addrs.push(
                Leaf {
                    remaining: remaining.clone(),
                    done: done.clone(),
                }
                .start(),
            );
        }
        for a in &addrs {
            a.do_send(Hit);
        }
        done.notified().await;
        let elapsed = start.elapsed();

        let vec_bytes = (addrs.capacity() * std::mem::size_of::<Addr<Leaf>>()) as i64;
        let per_actor = (live_bytes() as i64 - base - vec_bytes) as f64 / n as f64;
        (elapsed, per_actor)
        // actors are dropped with the System's runtime when block_on's runner is dropped
    })
}

// ---------- case 5: I/O-bound handlers ----------

pub struct IoActor {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Actor for IoActor {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Call;

impl Handler<Call> for IoActor {
    // AtomicResponse = the handler future is run via `ctx.wait(..)`: the actor does not
    // pull the next mailbox message until it resolves (one-at-a-time, like kameo/ractor).
    // `ResponseFuture` would instead `actix_rt::spawn` it => the 10 calls overlap.
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Call, _ctx: &mut Context<Self>) -> Self::Result {
        let remaining = self.remaining.clone();
        let done = self.done.clone();
        AtomicResponse::new(Box::pin(
            async move {
                // external call stand-in (actix::clock::sleep is the same tokio function)
                tokio::time::sleep(Duration::from_millis(20)).await;
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    done.notify_one();
                }
            }
            .into_actor(self),
        ))
    }
}

/// Case 5: `actors` actors x `per_actor` messages, each handler sleeps 20 ms (sequential
/// per actor via AtomicResponse). All actors on one arbiter thread.
pub fn io_bound(actors: usize, per_actor: usize) -> Duration {
    System::new().block_on(async move {
        let remaining = Arc::new(AtomicUsize::new(actors * per_actor));
        let done = Arc::new(Notify::new());
        let addrs: Vec<Addr<IoActor>> = (0..actors)
            .map(|_| {
                IoActor {
                    remaining: remaining.clone(),
                    done: done.clone(),
                }
                .start()
            })
            .collect();

        let start = Instant::now();
        for a in &addrs {
            for _ in 0..per_actor {
                a.do_send(Call);
            }
        }
        done.notified().await;
        start.elapsed()
    })
}
