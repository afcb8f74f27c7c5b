//! The wire format on a fixed-seed corpus of agent messages, in one run:
//! hive zstd per batch of 50 (with and without a trained dictionary), gzip-6
//! per batch, and the seed design's scheme (gzip-6 on each message above 1 KiB).
//! Ratios count frame headers. Then TCP on loopback: batching against one
//! frame per message.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hive_benches::{corpus, median, record, scale, Extra};
use hive_messaging::tcp::{TcpConfig, TcpLink, TcpServer, TlsConfig};
use hive_messaging::wire::{Dictionary, EncoderConfig, FrameDecoder, FrameEncoder, Limits};
use hive_messaging::{Communicator, CommunicatorConfig};
use hive_types::{AgentId, Message, MessageId};

const BATCH: usize = 50;

struct Scheme {
    name: &'static str,
    config: EncoderConfig,
    per_message: bool,
}

fn schemes(dict: &Dictionary) -> Vec<Scheme> {
    vec![
        Scheme {
            name: "document_gzip6_per_message",
            config: EncoderConfig::gzip(),
            per_message: true,
        },
        Scheme {
            name: "hive_gzip6_batch50",
            config: EncoderConfig::gzip(),
            per_message: false,
        },
        Scheme {
            name: "hive_zstd3_batch50",
            config: EncoderConfig::default(),
            per_message: false,
        },
        Scheme {
            name: "hive_zstd3_dict_batch50",
            config: EncoderConfig::with_dictionary(dict.clone()),
            per_message: false,
        },
    ]
}

/// Encodes the corpus with a scheme; returns the frames.
fn encode(scheme: &Scheme, encoder: &mut FrameEncoder, corpus: &[Message]) -> Vec<Vec<u8>> {
    let chunk = if scheme.per_message { 1 } else { BATCH };
    corpus
        .chunks(chunk)
        .enumerate()
        .map(|(i, batch)| {
            let mut frame = Vec::new();
            encoder
                .encode_messages(batch, i as u64, &mut frame)
                .unwrap();
            frame
        })
        .collect()
}

fn raw_bytes(corpus: &[Message]) -> usize {
    corpus.iter().map(hive_messaging::wire::message_len).sum()
}

fn compression(c: &mut Criterion) {
    let corpus = corpus::messages(1, scale(5_000, 2_000));
    let training = corpus::messages(2, 2_000);
    let dict = Dictionary::train(&training, 64 * 1024).unwrap();
    let raw = raw_bytes(&corpus);
    println!(
        "corpus: {} messages, mean payload {:.0} B, {} raw bytes",
        corpus.len(),
        corpus::mean_payload(&corpus),
        raw
    );

    let mut ratios = Vec::new();
    let mut group = c.benchmark_group("wire.encode");
    group.throughput(Throughput::Bytes(raw as u64));
    for scheme in schemes(&dict) {
        let mut encoder = FrameEncoder::new(scheme.config.clone()).unwrap();
        let frames = encode(&scheme, &mut encoder, &corpus);
        let wire: usize = frames.iter().map(Vec::len).sum();
        ratios.push((scheme.name, raw as f64 / wire as f64));
        group.bench_function(scheme.name, |b| {
            b.iter(|| black_box(encode(&scheme, &mut encoder, &corpus)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("wire.decode");
    group.throughput(Throughput::Bytes(raw as u64));
    for scheme in schemes(&dict) {
        let frames = encode(
            &scheme,
            &mut FrameEncoder::new(scheme.config.clone()).unwrap(),
            &corpus,
        );
        let mut decoder = FrameDecoder::new(Limits::default()).unwrap();
        decoder.add_dictionary(&dict).unwrap();
        group.bench_function(scheme.name, |b| {
            b.iter(|| {
                for f in &frames {
                    black_box(decoder.decode(f).unwrap());
                }
            })
        });
    }
    group.finish();

    let doc = ratios[0].1;
    for (name, ratio) in &ratios {
        println!("compression ratio (headers included) {name}: {ratio:.2}");
    }
    for (name, ratio) in &ratios[1..] {
        record(&Extra {
            component: "hive-messaging",
            case: &format!("compression ratio, {name}"),
            unit: "raw/wire",
            higher_is_better: true,
            hive: *ratio,
            anchor: "document_gzip6_per_message",
            anchor_value: doc,
            goal: if name.starts_with("hive_zstd") {
                2.5
            } else {
                f64::NAN
            },
        });
    }
}

/// Messages/s from one sender to a remote agent over loopback TCP, with
/// `server` and `client` security (plaintext when `None`).
fn tcp_rate(
    corpus: &[Message],
    frame_messages: usize,
    n: u32,
    tls: Option<&(TlsConfig, TlsConfig)>,
) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = (
        Communicator::new(CommunicatorConfig::default()).unwrap(),
        Communicator::new(CommunicatorConfig::default()).unwrap(),
    );
    let (server_side, client_side) = match tls {
        None => (TcpConfig::plaintext(), TcpConfig::plaintext()),
        Some((s, c)) => (TcpConfig::tls(s.clone()), TcpConfig::tls(c.clone())),
    };
    let server = rt
        .block_on(TcpServer::bind(
            &b,
            "127.0.0.1:0",
            TcpConfig {
                frame_messages,
                ..server_side
            },
        ))
        .unwrap();
    let link = rt
        .block_on(TcpLink::connect(
            &a,
            server.local_addr(),
            TcpConfig {
                frame_messages,
                ..client_side
            },
        ))
        .unwrap();
    let (from, to) = (AgentId::random(), AgentId::random());
    let mut mailbox = b.register(to).unwrap();
    while !a.agents().contains(&to) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let corpus = corpus.to_vec();
    let start = Instant::now();
    let sender = a.sender();
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            let mut m = corpus[i as usize % corpus.len()].clone();
            m.id = MessageId::random(); // receivers drop repeated ids
            m.sender = from;
            m.recipient = to.into();
            sender.send(m).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut got = 0u32;
    while got < n {
        got += mailbox.recv_many(&mut buf, 1024).unwrap() as u32;
        buf.clear();
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    producer.join().unwrap();
    rt.block_on(link.close());
    rt.block_on(server.shutdown());
    rate
}

fn tcp_loopback(_: &mut Criterion) {
    let n = scale(200_000, 40_000) as u32;
    let rounds = scale(3, 1);
    let certs = hive_benches::tls::pair().unwrap();
    for (name, corpus) in [
        ("corpus messages, mean 0.94 KB", corpus::messages(3, 1000)),
        ("small messages, 60-200 B", corpus::small_messages(6, 1000)),
    ] {
        let mut batched: Vec<f64> = (0..rounds)
            .map(|_| tcp_rate(&corpus, 1024, n, None))
            .collect();
        let mut single: Vec<f64> = (0..rounds)
            .map(|_| tcp_rate(&corpus, 1, n / 4, None))
            .collect();
        let mut tls: Vec<f64> = (0..rounds)
            .map(|_| tcp_rate(&corpus, 1024, n, Some(&certs)))
            .collect();
        let (b, s, t) = (median(&mut batched), median(&mut single), median(&mut tls));
        println!(
            "tcp loopback over TLS, {name}: batched {t:.0} msg/s ({:.2}x plaintext)",
            t / b
        );
        record(&Extra {
            component: "hive-messaging",
            case: &format!("tcp loopback over TLS messages/s, {name}"),
            unit: "msg/s",
            higher_is_better: true,
            hive: t,
            anchor: "the same link in plaintext",
            anchor_value: b,
            goal: 0.8,
        });
        println!("tcp loopback, {name}: batched {b:.0} msg/s, one frame per message {s:.0} msg/s ({:.1}x)", b / s);
        record(&Extra {
            component: "hive-messaging",
            case: &format!("tcp loopback messages/s, {name}"),
            unit: "msg/s",
            higher_is_better: true,
            hive: b,
            anchor: "one frame per message",
            anchor_value: s,
            goal: 5.0,
        });
    }
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = compression, tcp_loopback
}
criterion_main!(benches);
