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
//! starts a tree of its own. Messages from other processes start their own
//! trees too: the wire format carries no trace context, so the
//! `message_id` field is what joins the two sides.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use hive_types::sync::lock;
use hive_types::{Message, MessageId, MessageKind};
use tracing::Span;

use crate::cell::AgentCell;

/// Spans that sent messages not yet handled, by message id: at most
/// `capacity`, oldest evicted first.
pub(crate) struct Links {
    table: Mutex<Table>,
    capacity: usize,
    evicted_metric: metrics::Counter,
}

#[derive(Default)]
struct Table {
    spans: HashMap<MessageId, Span>,
    /// Insertion order; ids already taken are skipped when they come up.
    order: VecDeque<MessageId>,
}

impl Links {
    pub(crate) fn new(capacity: usize) -> Self {
        metrics::describe_counter!(
            "hive_trace_links_evicted_total",
            "Sending spans forgotten before their message was handled (the recipient's span starts a new trace)"
        );
        Links {
            table: Mutex::new(Table::default()),
            capacity,
            evicted_metric: metrics::counter!("hive_trace_links_evicted_total"),
        }
    }

    /// Remembers the current span as the parent of `message`'s handling,
    /// when there is one and `local` says the recipient is in this process.
    /// Replies are left out: the asker's `hive.ask` span covers them.
    pub(crate) fn remember(&self, message: &Message, local: impl FnOnce() -> bool) {
        let span = Span::current();
        if span.is_disabled() || message.kind == MessageKind::Response || !local() {
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
            let parent = parent.as_ref().and_then(Span::id);
            tracing::info_span!(
                parent: parent,
                "hive.handle",
                agent = %cell.id,
                name = cell.name.as_deref(),
                message_id = %message.id,
                correlation_id = message.correlation_id.map(tracing::field::display),
                sender = %message.sender,
                priority = ?message.priority,
                kind = ?message.kind,
            )
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
