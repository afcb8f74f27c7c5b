//! Durable mail on a three-server JetStream cluster on loopback with an R3
//! stream: one server killed mid-stream, nothing lost.
#![cfg(feature = "jetstream")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod support;

use std::time::{Duration, Instant};

use hive_messaging::nats::{NatsConfig, NatsTransport};
use hive_messaging::Communicator;
use hive_types::AgentId;
use support::nats::{durable_swarm, free_port, nats_server_binary, Server};
use support::{comm, runtime};

/// Three servers routed to each other, each with its own store.
fn cluster(bin: &std::path::PathBuf, dir: &std::path::Path) -> Vec<Server> {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    (0..3)
        .map(|i| {
            let others: Vec<String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", routes[j]))
                .collect();
            let store = dir.join(format!("n{i}"));
            let conf = format!(
                "server_name: n{i}\njetstream {{ store_dir: {store:?} }}\n\
                 cluster {{ name: hive, listen: \"127.0.0.1:{}\", routes: [{}] }}\n",
                routes[i],
                others.join(", ")
            );
            let path = dir.join(format!("n{i}.conf"));
            std::fs::write(&path, conf).unwrap();
            let path = path.to_string_lossy().into_owned();
            Server::start(bin, free_port(), &["-c".into(), path])
        })
        .collect()
}

/// Connects once the cluster has elected its JetStream leader.
fn connect(
    rt: &tokio::runtime::Runtime,
    comm: &Communicator,
    urls: &str,
    config: &NatsConfig,
) -> NatsTransport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rt.block_on(NatsTransport::connect(comm, urls, config.clone())) {
            Ok(t) => return t,
            Err(e) if Instant::now() < deadline => {
                eprintln!("cluster not ready yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("the cluster never became ready: {e}"),
        }
    }
}

#[test]
fn an_r3_stream_loses_nothing_when_one_server_dies() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut servers = cluster(&bin, dir.path());
    let urls: Vec<String> = servers.iter().map(Server::url).collect();
    let urls = urls.join(",");
    let mut config = durable_swarm();
    if let Some(d) = config.durable.as_mut() {
        d.replicas = 3;
    }
    let rt = runtime();
    let (a, b) = (comm(), comm());
    let mailbox = b.register(AgentId::random()).unwrap();
    let ta = connect(&rt, &a, &urls, &config);
    let tb = connect(&rt, &b, &urls, &config);

    let kill = || servers[2].stop(); // SIGKILL one of three
    support::durable::loses_nothing(&rt, (&a, &ta), mailbox, 100_000, (33_333, kill));
    eprintln!(
        "cluster: publisher {:?}, consumer {:?}",
        ta.durable_stats(),
        tb.durable_stats()
    );
    rt.block_on(ta.close());
    rt.block_on(tb.close());
}
