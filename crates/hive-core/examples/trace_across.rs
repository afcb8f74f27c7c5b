//! One request traced across two processes' agents with OpenTelemetry.
//! Two systems (standing in for two processes) are joined by a TCP link;
//! a planner on one asks an expert on the other. Both systems carry trace
//! contexts with the `tracing-opentelemetry` bridge in
//! `tests/support/otel.rs`, and the spans an in-memory exporter received
//! are printed as one tree.
//!
//! `cargo run -p hive-core --features tracing,tcp --example trace_across`
#![allow(clippy::print_stdout)] // an example prints its tree

use std::time::Duration;

use hive_core::messaging::tcp::{TcpConfig, TcpLink, TcpServer};
use hive_core::{Agent, AgentId, Context, Message, SwarmSystem};
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

#[path = "../tests/support/otel.rs"]
mod otel;

/// Answers a question.
struct Expert;

impl Agent for Expert {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let _ = ctx.reply(&message, "42").await;
    }
}

/// Asks the expert, then says it is done.
struct Planner {
    expert: AgentId,
    done: tokio::sync::mpsc::Sender<()>,
}

impl Agent for Planner {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let _ = ctx
            .ask(self.expert, message.payload, Duration::from_secs(5))
            .await;
        let _ = self.done.send(()).await;
    }
}

fn print_tree(spans: &[SpanData], parent: SpanId, depth: usize) {
    for s in spans.iter().filter(|s| s.parent_span_id == parent) {
        let agent = s.attributes.iter().find(|kv| kv.key.as_str() == "agent");
        let agent = agent
            .map(|kv| format!(" agent={}", kv.value))
            .unwrap_or_default();
        println!(
            "{}{} (trace {}){agent}",
            "  ".repeat(depth),
            s.name,
            s.span_context.trace_id()
        );
        print_tree(spans, s.span_context.span_id(), depth + 1);
    }
}

fn main() -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("example"))),
    )?;

    let here = SwarmSystem::builder()
        .trace_propagator(otel::OtelPropagator)
        .build()?;
    let there = SwarmSystem::builder()
        .trace_propagator(otel::OtelPropagator)
        .build()?;
    let expert = there.spawn(Expert)?.id();
    let rt = here.runtime().clone();
    let server = rt.block_on(TcpServer::bind(
        there.communicator(),
        "127.0.0.1:0",
        TcpConfig::plaintext(),
    ))?;
    let link = rt.block_on(TcpLink::connect(
        here.communicator(),
        server.local_addr(),
        TcpConfig::plaintext(),
    ))?;
    while !here.communicator().is_registered(expert) {
        std::thread::sleep(Duration::from_millis(5)); // the link announces the expert
    }
    let (done, mut finished) = tokio::sync::mpsc::channel(1);
    let planner = here.spawn(Planner { expert, done })?.id();

    let request = tracing::info_span!("request");
    request.in_scope(|| here.tell(planner, "the question"))?;
    rt.block_on(finished.recv());
    drop(request);

    rt.block_on(link.close());
    rt.block_on(server.shutdown());
    here.shutdown(Duration::from_secs(5));
    there.shutdown(Duration::from_secs(5));
    provider.force_flush()?;
    print_tree(&exporter.get_finished_spans()?, SpanId::INVALID, 0);
    Ok(())
}
