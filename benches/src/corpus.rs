//! A fixed-seed corpus of agent messages: JSON-like envelopes carrying
//! natural-language notes, payloads from 100 B to 8 KiB with a mean near
//! 1 KiB (log-normal sizes), the traffic the compression goals are about.

use bytes::Bytes;
use hive_types::{AgentId, Message, MessageKind, Priority};

const WORDS: &[&str] = &[
    "the",
    "agent",
    "planner",
    "worker",
    "task",
    "shard",
    "result",
    "summary",
    "index",
    "query",
    "document",
    "model",
    "memory",
    "context",
    "retry",
    "timeout",
    "queue",
    "priority",
    "batch",
    "message",
    "coordinator",
    "consensus",
    "vote",
    "lease",
    "replica",
    "checkpoint",
    "progress",
    "failed",
    "completed",
    "assigned",
    "pending",
    "analysis",
    "report",
    "customer",
    "invoice",
    "order",
    "shipment",
    "warehouse",
    "inventory",
    "forecast",
    "demand",
    "latency",
    "throughput",
    "error",
    "warning",
    "healthy",
    "degraded",
    "recovered",
    "budget",
    "token",
    "embedding",
    "vector",
    "search",
    "ranking",
    "score",
    "threshold",
    "confidence",
    "evidence",
    "source",
    "citation",
    "draft",
    "review",
    "approve",
    "reject",
    "escalate",
    "handoff",
    "deadline",
    "schedule",
    "calendar",
    "meeting",
    "notes",
    "action",
    "item",
    "owner",
    "status",
    "update",
    "a",
    "an",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "from",
    "by",
    "after",
    "before",
    "while",
    "because",
    "therefore",
    "however",
    "each",
    "every",
    "some",
    "all",
    "is",
    "was",
    "will",
    "should",
    "could",
    "must",
    "has",
    "had",
    "needs",
    "requires",
    "found",
    "checked",
    "merged",
    "split",
    "routed",
    "cached",
    "stored",
    "loaded",
    "sent",
    "received",
    "parsed",
    "validated",
    "rejected",
    "accepted",
    "scored",
    "ranked",
    "grouped",
    "quickly",
    "slowly",
    "again",
    "twice",
    "later",
    "now",
    "still",
    "already",
    "only",
];

const STATUSES: &[&str] = &[
    "pending",
    "running",
    "completed",
    "failed",
    "retrying",
    "blocked",
];

const KINDS: &[MessageKind] = &[
    MessageKind::TaskAssigned,
    MessageKind::TaskProgress,
    MessageKind::TaskCompleted,
    MessageKind::Request,
    MessageKind::Response,
    MessageKind::Coordination,
    MessageKind::Data,
];

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(1e-12);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn sentence(rng: &mut fastrand::Rng, out: &mut String) {
    let words = rng.usize(6..18);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.usize(..WORDS.len())]);
    }
    out.push_str(". ");
}

/// One payload of about `target` bytes.
fn payload(rng: &mut fastrand::Rng, target: usize, agents: &[AgentId]) -> String {
    let mut s = String::with_capacity(target + 64);
    let from = agents[rng.usize(..agents.len())];
    s.push_str(&format!(
        "{{\"agent\":\"worker-{}\",\"task_id\":\"{}\",\"status\":\"{}\",\"attempt\":{},\"score\":{:.3},\"notes\":\"",
        rng.u32(0..64),
        from,
        STATUSES[rng.usize(..STATUSES.len())],
        rng.u32(1..4),
        rng.f64()
    ));
    while s.len() + 3 < target {
        sentence(rng, &mut s);
    }
    s.truncate(target.saturating_sub(2).max(s.len().min(target)));
    s.push_str("\"}");
    s
}

/// `n` messages from `seed`: the same seed always gives the same corpus.
pub fn messages(seed: u64, n: usize) -> Vec<Message> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let agents: Vec<AgentId> = (0..32)
        .map(|i| AgentId::from_u128(0x5eed_0000 + i))
        .collect();
    (0..n)
        .map(|_| {
            let size = (6.6 + 0.7 * normal(&mut rng)).exp().clamp(100.0, 8192.0) as usize;
            let from = agents[rng.usize(..agents.len())];
            let to = agents[rng.usize(..agents.len())];
            Message::builder(from, to)
                .kind(KINDS[rng.usize(..KINDS.len())])
                .priority(Priority::ALL[rng.usize(..3)])
                .payload(Bytes::from(payload(&mut rng, size, &agents)))
                .build()
        })
        .collect()
}

/// `n` small messages (status updates of 60 to 200 bytes) from `seed`.
pub fn small_messages(seed: u64, n: usize) -> Vec<Message> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let agents: Vec<AgentId> = (0..32)
        .map(|i| AgentId::from_u128(0x5eed_0000 + i))
        .collect();
    (0..n)
        .map(|_| {
            let size = rng.usize(60..200);
            let from = agents[rng.usize(..agents.len())];
            let to = agents[rng.usize(..agents.len())];
            Message::builder(from, to)
                .kind(MessageKind::TaskProgress)
                .payload(Bytes::from(payload(&mut rng, size, &agents)))
                .build()
        })
        .collect()
}

/// Mean payload size of a corpus.
pub fn mean_payload(messages: &[Message]) -> f64 {
    messages.iter().map(|m| m.payload.len()).sum::<usize>() as f64 / messages.len().max(1) as f64
}
