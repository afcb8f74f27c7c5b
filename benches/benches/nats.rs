//! hive over NATS beside one NATS message per hive message, same server,
//! same run: messages per second and bytes on the wire for the fixed-seed
//! corpus of agent messages; then hive over JetStream (durable mail, file
//! storage) beside one JetStream message per hive message and beside hive
//! over core NATS (the price of durability). Needs `nats-server` (the bench
//! starts one with JetStream on a free loopback port); without it the bench
//! says so and records nothing.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures::StreamExt;
use hive_benches::{corpus, median, record, scale, Extra};
use hive_messaging::nats::{DurableConfig, NatsConfig, NatsTransport};
use hive_messaging::wire::{EncoderConfig, FrameEncoder};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message};

struct Server(Child, u16, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.2);
    }
}

fn start_server() -> Option<Server> {
    let bin = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = std::env::temp_dir().join(format!("hive-bench-js-{}", std::process::id()));
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Server(child, port, store))
}

/// How long a receiver waits for the next message before it counts the
/// rest as lost (core NATS is at most once; a run must not hang on a loss).
const QUIET: Duration = Duration::from_secs(10);

/// What one run measured.
struct Run {
    /// Messages received per second.
    rate: f64,
    /// Bytes published.
    bytes: u64,
    /// Messages sent but never received.
    lost: usize,
}

/// hive: communicator to communicator through NATS (core, or JetStream
/// with `durable`).
fn hive_run(url: &str, messages: &[Message], durable: bool) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = NatsConfig {
        swarm: format!("bench{}", fastrand::u32(..)),
        durable: durable.then(DurableConfig::default),
        ..NatsConfig::default()
    };
    let (a, b) = (
        Communicator::new(CommunicatorConfig::default()).unwrap(),
        Communicator::new(CommunicatorConfig::default()).unwrap(),
    );
    let to = AgentId::random();
    let mut mailbox = b.register(to).unwrap();
    let ta = rt
        .block_on(NatsTransport::connect(&a, url, config.clone()))
        .unwrap();
    let _tb = rt
        .block_on(NatsTransport::connect(&b, url, config))
        .unwrap();
    let batch: Vec<Message> = messages
        .iter()
        .map(|m| Message {
            recipient: to.into(),
            ..m.clone()
        })
        .collect();
    let n = batch.len();
    let start = Instant::now();
    let sender = a.sender();
    let producer = std::thread::spawn(move || {
        for m in batch {
            sender.send(m).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut got = 0;
    while got < n && mailbox.recv_timeout(QUIET).is_ok() {
        got += 1 + mailbox.try_recv_many(&mut buf, 1024).unwrap();
        buf.clear(); // handled: a durable frame is acknowledged
    }
    let rate = got as f64 / start.elapsed().as_secs_f64();
    producer.join().unwrap();
    let _ = rt.block_on(ta.settle(Duration::from_secs(30)));
    let bytes = ta.stats().bytes_sent;
    rt.block_on(ta.close());
    Run {
        rate,
        bytes,
        lost: n - got,
    }
}

/// One NATS message per hive message (its record in an uncompressed
/// frame), plain publish and subscribe.
fn per_message_run(url: &str, messages: &[Message]) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let publisher = async_nats::connect(url).await.unwrap();
        let subscriber = async_nats::connect(url).await.unwrap();
        let subject = format!("per-message.{}", fastrand::u32(..));
        let mut sub = subscriber.subscribe(subject.clone()).await.unwrap();
        subscriber.flush().await.unwrap();
        let mut encoder = FrameEncoder::new(EncoderConfig::uncompressed()).unwrap();
        let n = messages.len();
        let start = Instant::now();
        let consumer = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match tokio::time::timeout(QUIET, sub.next()).await {
                    Ok(Some(m)) => std::hint::black_box(m.payload.len()),
                    Ok(None) | Err(_) => break,
                };
                got += 1;
            }
            got
        });
        let mut bytes = 0u64;
        let mut frame = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            frame.clear();
            encoder
                .encode_messages(std::slice::from_ref(m), i as u64, &mut frame)
                .unwrap();
            bytes += frame.len() as u64;
            publisher
                .publish(subject.clone(), bytes::Bytes::copy_from_slice(&frame))
                .await
                .unwrap();
        }
        publisher.flush().await.unwrap();
        let got = consumer.await.unwrap();
        Run {
            rate: got as f64 / start.elapsed().as_secs_f64(),
            bytes,
            lost: n - got,
        }
    })
}

fn nats(_: &mut Criterion) {
    let Some(server) = start_server() else {
        println!("nats: nats-server not found; the NATS comparison is skipped");
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.1);
    let n = scale(100_000, 20_000);
    for (name, messages) in [
        ("corpus messages, mean 0.94 KB", corpus::messages(4, n)),
        ("small messages, 60-200 B", corpus::small_messages(5, n)),
    ] {
        compare(&url, name, &messages);
    }
    let messages = corpus::messages(4, scale(100_000, 20_000));
    compare_durable(&url, "corpus messages, mean 0.94 KB", &messages);
}

fn compare(url: &str, name: &str, messages: &[Message]) {
    let rounds = scale(3, 1);
    let (mut hr, mut pr) = (Vec::new(), Vec::new());
    let (mut hb, mut pb) = (0, 0);
    for _ in 0..rounds {
        let hive = hive_run(url, messages, false);
        let plain = per_message_run(url, messages);
        for (who, run) in [
            ("hive", &hive),
            ("one NATS message per hive message", &plain),
        ] {
            if run.lost > 0 {
                println!(
                    "nats, {name}: {who} lost {} of {} messages (at most once)",
                    run.lost,
                    messages.len()
                );
            }
        }
        (hb, pb) = (hive.bytes, plain.bytes);
        hr.push(hive.rate);
        pr.push(plain.rate);
    }
    let (h, p) = (median(&mut hr), median(&mut pr));
    println!(
        "nats, {name} ({}): hive {h:.0} msg/s, {hb} B; one NATS message per hive message {p:.0} msg/s, {pb} B ({:.1}x the rate, {:.2} of the bytes)",
        messages.len(),
        h / p,
        hb as f64 / pb as f64
    );
    let anchor = "one NATS message per hive message";
    record_rate_and_bytes("nats", name, anchor, (h, p), (hb, pb));
}

/// One JetStream message per hive message (its record in an uncompressed
/// frame), as async-nats's docs show it: publishes with their
/// acknowledgements awaited 256 at a time, a durable pull consumer
/// acknowledging each message after reading it. File storage, work queue.
fn per_js_message_run(url: &str, messages: &[Message]) -> Run {
    use async_nats::jetstream::{self, consumer, stream};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let name = format!("PER_MESSAGE_{}", fastrand::u32(..));
        let subject = format!("per-message.js.{name}");
        let stream = js
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("reader".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut encoder = FrameEncoder::new(EncoderConfig::uncompressed()).unwrap();
        let n = messages.len();
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut stream = consumer.messages().await.unwrap();
            while got < n {
                match tokio::time::timeout(QUIET, stream.next()).await {
                    Ok(Some(Ok(m))) => {
                        std::hint::black_box(m.payload.len());
                        m.ack().await.unwrap();
                    }
                    _ => break,
                };
                got += 1;
            }
            got
        });
        let mut bytes = 0u64;
        let mut frame = Vec::new();
        let mut acks = futures::stream::FuturesUnordered::new();
        for (i, m) in messages.iter().enumerate() {
            frame.clear();
            encoder
                .encode_messages(std::slice::from_ref(m), i as u64, &mut frame)
                .unwrap();
            bytes += frame.len() as u64;
            let payload = bytes::Bytes::copy_from_slice(&frame);
            acks.push(std::future::IntoFuture::into_future(
                js.publish(subject.clone(), payload).await.unwrap(),
            ));
            if acks.len() >= 256 {
                acks.next().await.unwrap().unwrap();
            }
        }
        while let Some(ack) = acks.next().await {
            ack.unwrap();
        }
        let got = reader.await.unwrap();
        let _ = js.delete_stream(&name).await;
        Run {
            rate: got as f64 / start.elapsed().as_secs_f64(),
            bytes,
            lost: n - got,
        }
    })
}

/// hive over JetStream beside one JetStream message per hive message and
/// beside hive over core NATS.
fn compare_durable(url: &str, name: &str, messages: &[Message]) {
    let rounds = scale(3, 1);
    let (mut dr, mut pr, mut cr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut db, mut pb) = (0, 0);
    for _ in 0..rounds {
        let durable = hive_run(url, messages, true);
        let plain = per_js_message_run(url, messages);
        let core = hive_run(url, messages, false);
        for (who, run) in [
            ("hive over JetStream", &durable),
            ("one JetStream message per hive message", &plain),
        ] {
            if run.lost > 0 {
                println!(
                    "jetstream, {name}: {who} lost {} of {} messages",
                    run.lost,
                    messages.len()
                );
            }
        }
        (db, pb) = (durable.bytes, plain.bytes);
        dr.push(durable.rate);
        pr.push(plain.rate);
        cr.push(core.rate);
    }
    let (d, p, c) = (median(&mut dr), median(&mut pr), median(&mut cr));
    println!(
        "jetstream, {name} ({}): hive {d:.0} msg/s, {db} B; one JetStream message per hive message {p:.0} msg/s, {pb} B ({:.1}x the rate, {:.2} of the bytes); hive over core NATS {c:.0} msg/s ({:.2} of it)",
        messages.len(),
        d / p,
        db as f64 / pb as f64,
        d / c
    );
    let anchor = "one JetStream message per hive message";
    record_rate_and_bytes("jetstream", name, anchor, (d, p), (db, pb));
    record(&Extra {
        component: "hive-messaging",
        case: &format!("jetstream messages/s beside core NATS (the price of durability), {name}"),
        unit: "msg/s",
        higher_is_better: true,
        hive: d,
        anchor: "hive over core NATS",
        anchor_value: c,
        goal: f64::NAN,
    });
}

/// Records hive's messages/s (goal 5x) and bytes on the wire (goal 0.4x)
/// beside `anchor`'s, as `<over> messages/s, <name>` and `<over> bytes on
/// the wire, <name>`.
fn record_rate_and_bytes(
    over: &str,
    name: &str,
    anchor: &str,
    rate: (f64, f64),
    bytes: (u64, u64),
) {
    record(&Extra {
        component: "hive-messaging",
        case: &format!("{over} messages/s, {name}"),
        unit: "msg/s",
        higher_is_better: true,
        hive: rate.0,
        anchor,
        anchor_value: rate.1,
        goal: 5.0,
    });
    record(&Extra {
        component: "hive-messaging",
        case: &format!("{over} bytes on the wire, {name}"),
        unit: "bytes",
        higher_is_better: false,
        hive: bytes.0 as f64,
        anchor,
        anchor_value: bytes.1 as f64,
        goal: 0.4,
    });
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = nats
}
criterion_main!(benches);
