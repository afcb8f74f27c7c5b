//! Per-agent figures: in the report and through the `metrics` facade, with
//! bounded cardinality. (One test: its system installs the global
//! recorder, as every system does by default.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use hive_core::{Agent, AgentId, Context, Message, SwarmSystem};

struct Worker;

impl Agent for Worker {
    async fn handle(&mut self, m: Message, ctx: &mut Context) {
        assert!(m.payload.as_ref() != b"boom", "boom");
        tokio::time::sleep(Duration::from_micros(200)).await;
        ctx.flush();
    }
}

#[test]
fn named_agents_get_their_own_series_up_to_the_bound() {
    let sys = SwarmSystem::builder()
        .max_observed_agents(2)
        .tick_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let names = ["alpha", "beta", "gamma"];
    let agents: Vec<AgentId> = names
        .iter()
        .map(|n| sys.agent().name(n).spawn(Worker).unwrap().id())
        .collect();
    let anonymous = sys.spawn(Worker).unwrap().id();
    let sender = sys.sender();
    for (i, &a) in agents.iter().chain([&anonymous]).enumerate() {
        for _ in 0..=i * 10 {
            sender
                .send(Message::new(AgentId::nil(), a, "work"))
                .unwrap();
        }
    }
    sender
        .send(Message::new(AgentId::nil(), agents[0], "boom"))
        .unwrap();
    sender.flush();
    assert!(sys.quiesce(Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(50)); // a tick or two

    let report = sys.report();
    let labels: Vec<&str> = report.agents.iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels, vec!["alpha", "beta"], "two series at most");
    let alpha = &report.agents[0];
    assert_eq!((alpha.handled, alpha.panics, alpha.restarts), (2, 1, 1));
    assert_eq!(report.agents[1].handled, 11);
    assert!(
        report.agents[1].handler_us.p50 >= 200.0,
        "{:?}",
        report.agents[1]
    );
    assert!(report.to_string().contains("| beta |"));

    let snap = sys.recorder().unwrap().snapshot();
    let handled = |agent: &str| {
        snap.counters
            .iter()
            .find(|c| {
                c.name == "hive_agent_handled_total"
                    && c.labels.get("agent").is_some_and(|a| a == agent)
            })
            .map(|c| c.value)
    };
    assert_eq!(handled("beta"), Some(11));
    assert_eq!(handled("gamma"), None, "beyond the bound: no series");
    assert!(snap
        .gauges
        .iter()
        .any(|g| g.name == "hive_agent_mailbox_depth"
            && g.labels.get("agent").is_some_and(|a| a == "alpha")));
    sys.shutdown(Duration::from_secs(5));
}
