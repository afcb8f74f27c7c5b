//! ractor 0.16 anchors. Runs inside a tokio multi-thread runtime.
//! Actor pattern: unit-struct handler implementing `ractor::Actor` (native async fn in trait,
//! no `async-trait` feature), state in `type State`, built in `pre_start`.
//! Mailbox: ractor's message port is an *unbounded* tokio mpsc; there is no bounded option.
//! `cast` (tell) is a sync, non-blocking enqueue; `call!` (ask) sends a message carrying an
//! `RpcReplyPort` (oneshot) and awaits the reply.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::alloc::live_bytes;

// ---------- case 1 & 2: tell N -> one counting actor ----------

pub struct Counter;

pub struct CounterState {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}

#[allow(dead_code)] // payload is carried, not read
pub struct Tick(pub u64);

impl Actor for Counter {
    type Msg = Tick;
    type State = CounterState;
    type Arguments = CounterState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: CounterState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        _msg: Tick,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.seen += 1;
        if state.seen == state.target {
            if let Some(tx) = state.done.take() {
                let _ = tx.send(());
            }
        }
        Ok(())
    }
}

/// Case 1: one producer casts `n` u64 messages to one actor.
pub async fn tell_1_to_1(n: u64) -> Duration {
    let (tx, rx) = oneshot::channel();
    let (actor, handle) = Actor::spawn(
        None,
        Counter,
        CounterState {
            seen: 0,
            target: n,
            done: Some(tx),
        },
    )
    .await
    .expect("spawn failed");

    let start = Instant::now();
    for i in 0..n {
        // same as `ractor::cast!(actor, Tick(i))`
        if actor.cast(Tick(i)).is_err() {
            panic!("cast failed");
        }
    }
    rx.await.expect("counter dropped");
    let elapsed = start.elapsed();

    actor.stop(None);
    handle.await.unwrap();
    elapsed
}

/// Case 2: `producers` tokio tasks each cast `n / producers` messages to one actor.
pub async fn tell_m_to_1(n: u64, producers: u64) -> Duration {
    let per = n / producers;
    let (tx, rx) = oneshot::channel();
    let (actor, handle) = Actor::spawn(
        None,
        Counter,
        CounterState {
            seen: 0,
            target: per * producers,
            done: Some(tx),
        },
    )
    .await
    .expect("spawn failed");

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(producers as usize);
    for _ in 0..producers {
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                if actor.cast(Tick(i)).is_err() {
                    panic!("cast failed");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rx.await.expect("counter dropped");
    let elapsed = start.elapsed();

    actor.stop(None);
    handle.await.unwrap();
    elapsed
}

// ---------- case 3: ask round trip ----------

pub struct Echo;

pub enum EchoMsg {
    Ping(u64, RpcReplyPort<u64>),
}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: EchoMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EchoMsg::Ping(x, reply) => {
                let _ = reply.send(x);
            }
        }
        Ok(())
    }
}

/// Case 3: `k` sequential `call!`s; returns each round-trip latency in ns.
pub async fn ask_round_trip(k: u64) -> Vec<u64> {
    let (actor, handle) = Actor::spawn(None, Echo, ()).await.expect("spawn failed");

    let mut lat = Vec::with_capacity(k as usize);
    for i in 0..k {
        let t = Instant::now();
        // expands to actor.call(|tx| EchoMsg::Ping(i, tx), None) + CallResult unwrapping
        let r: u64 = match call!(actor, EchoMsg::Ping, i) {
            Ok(v) => v,
            Err(_) => panic!("call failed"),
        };
        lat.push(t.elapsed().as_nanos() as u64);
        debug_assert_eq!(r, i);
    }

    actor.stop(None);
    handle.await.unwrap();
    lat
}

// ---------- case 4: spawn many, one message each ----------

pub struct Leaf;

pub struct LeafArgs {
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

pub struct Hit;

impl Actor for Leaf {
    type Msg = Hit;
    type State = LeafArgs;
    type Arguments = LeafArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: LeafArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        _msg: Hit,
        state: &mut LeafArgs,
    ) -> Result<(), ActorProcessingErr> {
        if state.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.done.notify_one();
        }
        Ok(())
    }
}

/// Case 4: spawn `n` actors (awaiting each `Actor::spawn`, i.e. pre_start), cast each one
/// message, wait until all handled. Returns (elapsed, live heap bytes per actor).
pub async fn spawn_n(n: usize) -> (Duration, f64) {
    let remaining = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Notify::new());
    let mut actors: Vec<(ActorRef<Hit>, JoinHandle<()>)> = Vec::with_capacity(n);
    let base = live_bytes() as i64;

    let start = Instant::now();
    for _ in 0..n {
        let args = LeafArgs {
            remaining: remaining.clone(),
            done: done.clone(),
        };
        actors.push(Actor::spawn(None, Leaf, args).await.expect("spawn failed"));
    }
    for (a, _) in &actors {
        if a.cast(Hit).is_err() {
            panic!("cast failed");
        }
    }
    done.notified().await;
    let elapsed = start.elapsed();

    let vec_bytes =
        (actors.capacity() * std::mem::size_of::<(ActorRef<Hit>, JoinHandle<()>)>()) as i64;
    let per_actor = (live_bytes() as i64 - base - vec_bytes) as f64 / n as f64;

    for (a, _) in &actors {
        a.stop(None);
    }
    for (_, h) in actors {
        h.await.unwrap();
    }
    (elapsed, per_actor)
}

// ---------- case 5: I/O-bound handlers ----------

pub struct IoActor;

pub struct Call;

impl Actor for IoActor {
    type Msg = Call;
    type State = LeafArgs;
    type Arguments = LeafArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: LeafArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        _msg: Call,
        state: &mut LeafArgs,
    ) -> Result<(), ActorProcessingErr> {
        // external call stand-in; ractor awaits handle() before taking the next message
        tokio::time::sleep(Duration::from_millis(20)).await;
        if state.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.done.notify_one();
        }
        Ok(())
    }
}

/// Case 5: `actors` actors x `per_actor` messages, each handler sleeps 20 ms.
pub async fn io_bound(actors: usize, per_actor: usize) -> Duration {
    let remaining = Arc::new(AtomicUsize::new(actors * per_actor));
    let done = Arc::new(Notify::new());
    let mut refs = Vec::with_capacity(actors);
    for _ in 0..actors {
        let args = LeafArgs {
            remaining: remaining.clone(),
            done: done.clone(),
        };
        refs.push(
            Actor::spawn(None, IoActor, args)
                .await
                .expect("spawn failed"),
        );
    }

    let start = Instant::now();
    for (a, _) in &refs {
        for _ in 0..per_actor {
            if a.cast(Call).is_err() {
                panic!("cast failed");
            }
        }
    }
    done.notified().await;
    let elapsed = start.elapsed();

    for (a, _) in &refs {
        a.stop(None);
    }
    for (_, h) in refs {
        h.await.unwrap();
    }
    elapsed
}
