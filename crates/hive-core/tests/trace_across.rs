//! Feature `tracing` across processes: two systems joined by a TCP link,
//! an OpenTelemetry SDK behind `tracing-opentelemetry`, and hive's trace
//! context on the wire. The answering system's span belongs to the
//! asker's trace, as the child of its `hive.ask` span.
#![cfg(all(feature = "tracing", feature = "tcp"))]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use hive_core::{Agent, Context, Message, SwarmSystem};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/otel.rs"]
mod otel;
#[path = "support/tcp.rs"]
mod tcp;
use tcp::{linked, Echo};

/// Asks the echo agent on each message, and hands the reply out.
struct Asker {
    echo: hive_core::AgentId,
    replies: std::sync::mpsc::Sender<hive_core::HiveResult<Message>>,
}

impl Agent for Asker {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let reply = ctx
            .ask(self.echo, message.payload, Duration::from_secs(5))
            .await;
        let _ = self.replies.send(reply);
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn a_request_to_another_process_continues_the_askers_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hive-test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let asking = SwarmSystem::builder()
        .trace_propagator(otel::OtelPropagator)
        .build()
        .unwrap();
    let answering = SwarmSystem::builder()
        .trace_propagator(otel::OtelPropagator)
        .build()
        .unwrap();
    let echo = answering.spawn(Echo).unwrap().id();
    let rt = asking.runtime().clone();
    let (server, link) = linked(&asking, &answering);

    let (replies, reply_rx) = std::sync::mpsc::channel();
    let asker = asking.spawn(Asker { echo, replies }).unwrap().id();
    let request = tracing::info_span!("request");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the link has announced the echo agent, an ask finds no route.
    let reply = loop {
        request
            .in_scope(|| asking.tell(asker, "over the wire"))
            .unwrap();
        match reply_rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Ok(reply) => break reply,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(&reply.payload[..], b"over the wire");
    drop(request);
    let answered = reply.correlation_id.unwrap().to_string();

    // The answering side's span ends after the reply left: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let done = named(&spans, "hive.handle").iter().any(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "message_id" && kv.value.as_str() == answered)
        });
        if done && !named(&spans, "request").is_empty() {
            break spans;
        }
        assert!(Instant::now() < deadline, "{spans:#?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Asks made before the link announced the echo agent found no route:
    // follow the answered one back to the request.
    let root = named(&spans, "request")[0];
    let handled = named(&spans, "hive.handle")
        .into_iter()
        .find(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "message_id" && kv.value.as_str() == answered)
        })
        .unwrap();
    assert_eq!(
        handled.span_context.trace_id(),
        root.span_context.trace_id(),
        "the other process continued the asker's trace"
    );
    let ask = named(&spans, "hive.ask")
        .into_iter()
        .find(|s| s.span_context.span_id() == handled.parent_span_id)
        .expect("the other process's handling is the ask's child");
    let asked = named(&spans, "hive.handle")
        .into_iter()
        .find(|s| s.span_context.span_id() == ask.parent_span_id)
        .expect("the ask runs in the asker's handling");
    assert_eq!(
        asked.parent_span_id,
        root.span_context.span_id(),
        "the asker's handling is the request's child"
    );

    rt.block_on(link.close());
    rt.block_on(server.shutdown());
    asking.shutdown(Duration::from_secs(5));
    answering.shutdown(Duration::from_secs(5));
}
