//! A hive `TracePropagator` for OpenTelemetry through `tracing-opentelemetry`:
//! the bridge a program installs on every process of a swarm.

use hive_core::tracing::Span;
use hive_core::{TraceContext, TracePropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads and writes the OpenTelemetry context of `tracing` spans.
pub(crate) struct OtelPropagator;

impl TracePropagator for OtelPropagator {
    fn inject(&self, span: &Span) -> Option<TraceContext> {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    fn extract(&self, context: &TraceContext, span: &Span) {
        let remote = SpanContext::new(
            TraceId::from_bytes(context.trace_id),
            SpanId::from_bytes(context.span_id),
            TraceFlags::new(context.flags),
            true,
            TraceState::default(),
        );
        // A span the OpenTelemetry layer does not know (filtered out) keeps
        // its own trace.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}
