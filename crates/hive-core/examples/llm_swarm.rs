//! An orchestrator's swarm: a coordinator fans work out to 100 analyst
//! agents; each calls a language-model service over HTTP (a local axum
//! server with injected latency stands in for it), scores the answer with
//! a CPU-heavy step on the balancer, and reports back. Prints the system's
//! report with its per-agent table.
//!
//! `cargo run --release -p hive-core --example llm_swarm [-- <tasks> <analysts>]`
#![allow(clippy::print_stdout)] // an example prints its report

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use hive_core::{Agent, AgentId, Context, Message, MessageKind, Priority, SwarmSystem};
use tokio::sync::oneshot;

/// The stand-in model: answers after 20 to 60 ms.
async fn complete(prompt: String) -> String {
    let ms = 20 + (prompt.len() as u64 * 7919) % 41;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("analysis of [{prompt}]: {}", "the plan holds; ".repeat(20))
}

/// Calls the model for each task, scores the answer, reports the score.
struct Analyst {
    http: reqwest::Client,
    model: String,
}

impl Agent for Analyst {
    async fn handle(&mut self, task: Message, ctx: &mut Context) {
        let prompt = String::from_utf8_lossy(&task.payload).into_owned();
        // The I/O wait: no thread is held while the model thinks.
        let answer = match self.http.post(&self.model).body(prompt).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(e) => format!("model unreachable: {e}"),
        };
        // The CPU-heavy step runs on the balancer at this task's priority.
        let score = ctx
            .spawn_cpu(task.priority, move || score(answer.as_bytes()))
            .await
            .unwrap_or(0);
        let result = Message::builder(ctx.id(), task.sender)
            .kind(MessageKind::TaskCompleted)
            .correlation_id(task.id)
            .payload(score.to_le_bytes().to_vec())
            .build();
        let _ = ctx.send(result).await;
    }
}

/// A deliberately heavy score: many rounds of mixing over the text.
fn score(text: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for round in 0..200u64 {
        for b in text {
            h = (h ^ u64::from(*b) ^ round).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h % 100
}

/// Fans tasks out round-robin and collects the scores.
struct Coordinator {
    analysts: Vec<AgentId>,
    tasks: u64,
    done: u64,
    total_score: u64,
    finished: Option<oneshot::Sender<(u64, u64)>>,
}

impl Agent for Coordinator {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        match m.kind {
            MessageKind::Coordination => {
                for (i, &to) in (0..self.tasks).zip(self.analysts.iter().cycle()) {
                    let task = Message::builder(ctx.id(), to)
                        .kind(MessageKind::TaskAssigned)
                        .priority(if i % 10 == 0 {
                            Priority::High
                        } else {
                            Priority::Normal
                        })
                        .payload(format!("ticket {i}: is the rollout plan safe?"))
                        .build();
                    if ctx.send(task).await.is_err() {
                        self.done += 1; // counted as settled: nobody will answer
                    }
                }
            }
            MessageKind::TaskCompleted => {
                self.done += 1;
                let bytes: [u8; 8] = m.payload.as_ref().try_into().unwrap_or([0; 8]);
                self.total_score += u64::from_le_bytes(bytes);
            }
            _ => {}
        }
        if self.done == self.tasks {
            if let Some(tx) = self.finished.take() {
                let _ = tx.send((self.done, self.total_score));
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let analysts: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);

    let system = SwarmSystem::builder().build()?;
    let runtime = system.runtime().clone();

    // The "model": an HTTP service on a free loopback port.
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let app = Router::new().route("/complete", post(complete));
    runtime.spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let model = format!("http://{addr}/complete");
    let ids: Vec<AgentId> = (0..analysts)
        .map(|i| {
            let agent = Analyst {
                http: http.clone(),
                model: model.clone(),
            };
            system
                .agent()
                .name(format!("analyst-{i:03}"))
                .spawn(agent)
                .map(|a| a.id())
        })
        .collect::<Result<_, _>>()?;
    let (finished, all_done) = oneshot::channel();
    let coordinator = system.agent().name("coordinator").spawn(Coordinator {
        analysts: ids,
        tasks,
        done: 0,
        total_score: 0,
        finished: Some(finished),
    })?;

    println!(
        "{tasks} tasks over {analysts} analysts, each a 20-60 ms model call and a CPU score..."
    );
    let started = Instant::now();
    system.sender().send(
        Message::builder(AgentId::nil(), coordinator.id())
            .kind(MessageKind::Coordination)
            .build(),
    )?;
    let (done, total) = runtime.block_on(all_done)?;
    let elapsed = started.elapsed();
    println!(
        "{done} tasks in {:.2} s ({:.0} tasks/s), mean score {:.1}\n",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        total as f64 / done.max(1) as f64
    );
    let report = system.report();
    println!("{report}");
    let shutdown = system.shutdown(Duration::from_secs(5));
    println!(
        "shutdown: {} accepted = {} handled + {} replies + {} undelivered",
        shutdown.accepted, shutdown.handled, shutdown.replies, shutdown.undelivered
    );
    Ok(())
}
