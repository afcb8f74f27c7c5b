//! Tracing (feature `tracing`): a `hive.handle` span per handled message
//! and a `hive.ask` span per ask, linked into one tree across the agents of
//! a process.
//!
//! A message sent while a span is current (a handler's, an ask's, or the
//! caller's own) to an agent of this process remembers that span; the
//! recipient's `hive.handle` span becomes its child. The table is bounded
//! in entries ([`SwarmBuilder::trace_links`](crate::SwarmBuilder::trace_links));
//! a link evicted before its message is handled (the message expired,
//! was dropped, or waited behind more links than the table holds) is
//! counted in `hive_trace_links_evicted_total`, and its recipient's span
//! starts a tree of its own.
//!
//! Across processes a [`TracePropagator`] carries the sending span's W3C
//! trace context in the message (`Message::trace`, on the wire after the
//! envelope); the receiving process's `hive.handle` span continues that
//! trace. Without a propagator, messages from other processes start trees
//! of their own, joined to their sender only by the `message_id` field.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use hive_types::sync::lock;
use hive_types::{Message, MessageId, MessageKind, TraceContext};
use tracing::Span;

use crate::cell::AgentCell;

/// Carries a span's context between processes (feature `tracing`): what
/// an OpenTelemetry bridge such as `tracing-opentelemetry` does with a
/// `traceparent` header, for hive messages. Set it with
/// [`SwarmBuilder::trace_propagator`](crate::SwarmBuilder::trace_propagator)
/// on both sides.
///
/// With `tracing-opentelemetry`, `inject` reads
/// `span.context().span().span_context()` (its trace id, span id and
/// flags, when valid) and `extract` builds a remote `SpanContext` from
/// `context` and calls `span.set_parent(...)`; hive-core's
/// `tests/support/otel.rs` is the whole bridge, and
/// `examples/trace_across.rs` uses it.
pub trait TracePropagator: Send + Sync + 'static {
    /// The trace context `span` gives a message leaving this process
    /// (`None`: the message carries none).
    fn inject(&self, span: &Span) -> Option<TraceContext>;

    /// Makes `span` (a `hive.handle` span just created for a message from
    /// another process) continue the trace `context` came from.
    fn extract(&self, context: &TraceContext, span: &Span);
}

/// Spans that sent messages not yet handled, by message id: at most
/// `capacity`, oldest evicted first.
pub(crate) struct Links {
    table: Mutex<Table>,
    capacity: usize,
    propagator: Option<Arc<dyn TracePropagator>>,
    evicted_metric: metrics::Counter,
}

#[derive(Default)]
struct Table {
    spans: HashMap<MessageId, Span>,
    /// Insertion order; ids already taken are skipped when they come up.
    order: VecDeque<MessageId>,
}

impl Links {
    pub(crate) fn new(capacity: usize, propagator: Option<Arc<dyn TracePropagator>>) -> Self {
        metrics::describe_counter!(
            "hive_trace_links_evicted_total",
            "Sending spans forgotten before their message was handled (the recipient's span starts a new trace)"
        );
        Links {
            table: Mutex::new(Table::default()),
            capacity,
            propagator,
            evicted_metric: metrics::counter!("hive_trace_links_evicted_total"),
        }
    }

    /// Remembers the current span as the parent of `message`'s handling,
    /// when there is one and `local` says the recipient is in this process;
    /// else gives the message the span's trace context, with a propagator.
    /// Replies are left out: the asker's `hive.ask` span covers them.
    pub(crate) fn remember(&self, message: &mut Message, local: impl FnOnce(&Message) -> bool) {
        let span = Span::current();
        if span.is_disabled() || message.kind == MessageKind::Response {
            return;
        }
        if !local(message) {
            if let Some(propagator) = &self.propagator {
                message.trace = propagator.inject(&span).map(Box::new);
            }
            return;
        }
        let mut table = lock(&self.table);
        while table.order.len() >= self.capacity {
            let Some(old) = table.order.pop_front() else {
                break;
            };
            if table.spans.remove(&old).is_some() {
                self.evicted_metric.increment(1);
            }
        }
        if table.spans.insert(message.id, span).is_none() {
            table.order.push_back(message.id);
        }
    }

    /// Forgets `id`'s link (its message was not sent).
    pub(crate) fn forget(&self, id: MessageId) {
        let mut table = lock(&self.table);
        table.spans.remove(&id);
        if table.spans.is_empty() {
            table.order.clear();
        }
    }

    /// The span `id` was sent from, once.
    fn take(&self, id: MessageId) -> Option<Span> {
        let mut table = lock(&self.table);
        let span = table.spans.remove(&id);
        if table.spans.is_empty() {
            table.order.clear();
        }
        span
    }

    /// The span a handler of `message` runs in: a child of the span that
    /// sent it, when that is known, else the root of a new trace.
    pub(crate) fn handle_span(&self, message: &Message, cell: &AgentCell) -> Span {
        if tracing::level_enabled!(tracing::Level::INFO) {
            let parent = self.take(message.id);
            let parent_id = parent.as_ref().and_then(Span::id);
            let linked = parent_id.is_some();
            let span = tracing::info_span!(
                parent: parent_id,
                "hive.handle",
                agent = %cell.id,
                name = cell.name.as_deref(),
                message_id = %message.id,
                correlation_id = message.correlation_id.map(tracing::field::display),
                sender = %message.sender,
                priority = ?message.priority,
                kind = ?message.kind,
            );
            if let (false, Some(context), Some(propagator)) =
                (linked, &message.trace, &self.propagator)
            {
                propagator.extract(context, &span);
            }
            span
        } else {
            Span::none()
        }
    }
}

/// The span an ask runs in (a child of the current span): its request
/// remembers it, so the responder's `hive.handle` span is its child.
pub(crate) fn ask_span(request: &Message) -> Span {
    tracing::info_span!(
        "hive.ask",
        to = request.recipient.agent().map(tracing::field::display),
        message_id = %request.id,
        priority = ?request.priority,
    )
}
