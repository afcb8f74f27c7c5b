//! Feature `tracing`: a span per handled message and per ask, linked into
//! one tree, read by a subscriber that records every span with its parent.
#![cfg(feature = "tracing")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hive_core::{Agent, Context, Message, SwarmSystem};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span as the subscriber saw it created.
#[derive(Debug, Clone)]
struct Seen {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<String, String>,
}

/// Records every span; tracks the entered spans per thread for
/// contextual parents and `Span::current`.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<Vec<Seen>>,
    metadata: Mutex<HashMap<u64, &'static Metadata<'static>>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

struct Shared(Arc<Recorder>);

impl Subscriber for Shared {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => ENTERED.with(|e| e.borrow().last().copied()),
            None => None,
        };
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.spans.lock().unwrap().push(Seen {
            id,
            name: attrs.metadata().name(),
            parent,
            fields,
        });
        self.0.metadata.lock().unwrap().insert(id, attrs.metadata());
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if let Some(at) = e.iter().rposition(|&s| s == span.into_u64()) {
                e.remove(at);
            }
        });
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let Some(id) = ENTERED.with(|e| e.borrow().last().copied()) else {
            return tracing_core::span::Current::none();
        };
        match self.0.metadata.lock().unwrap().get(&id) {
            Some(meta) => tracing_core::span::Current::new(Id::from_u64(id), meta),
            None => tracing_core::span::Current::none(),
        }
    }
}

/// The process-wide subscriber (agents run on other threads).
fn recorder() -> Arc<Recorder> {
    static RECORDER: OnceLock<Arc<Recorder>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let r = Arc::new(Recorder::default());
            tracing::subscriber::set_global_default(Shared(r.clone())).unwrap();
            r
        })
        .clone()
}

fn spans() -> Vec<Seen> {
    recorder().spans.lock().unwrap().clone()
}

/// The first span named `name` whose field `key` is `value`, waiting for
/// it a while.
fn find(name: &str, key: &str, value: &str) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = spans()
            .into_iter()
            .find(|s| s.name == name && s.fields.get(key).map(String::as_str) == Some(value));
        if let Some(s) = found {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no {name} span with {key}={value}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn by_id(id: u64) -> Seen {
    spans().into_iter().find(|s| s.id == id).unwrap()
}

/// Answers every request with its payload.
struct Echo;

impl Agent for Echo {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let _ = ctx.reply(&message, message.payload.clone()).await;
    }
}

/// On each message: asks the echo agent, then tells the sink.
struct Planner {
    echo: hive_core::AgentId,
    sink: hive_core::AgentId,
}

impl Agent for Planner {
    async fn handle(&mut self, message: Message, ctx: &mut Context) {
        let _ = ctx.ask(self.echo, "plan", Duration::from_secs(5)).await;
        let _ = ctx.tell(self.sink, message.payload).await;
    }
}

/// Does nothing.
struct Sink;

impl Agent for Sink {
    async fn handle(&mut self, _: Message, _: &mut Context) {}
}

#[test]
fn a_request_becomes_one_tree_across_agents_and_asks() {
    let _ = recorder();
    let sys = SwarmSystem::builder().build().unwrap();
    let echo = sys.spawn(Echo).unwrap().id();
    let sink = sys.spawn(Sink).unwrap().id();
    let planner = sys.spawn(Planner { echo, sink }).unwrap().id();

    // The caller's own span is the root of the tree.
    let root = tracing::info_span!("request", case = "tree");
    root.in_scope(|| sys.tell(planner, "job-1").unwrap());
    let root_id = root.id().unwrap().into_u64();

    let plan = find("hive.handle", "agent", &planner.to_string());
    assert_eq!(plan.parent, Some(root_id), "{plan:?}");
    assert_eq!(plan.fields["priority"], "Normal");
    let ask = find("hive.ask", "to", &echo.to_string());
    assert_eq!(
        ask.parent,
        Some(plan.id),
        "the ask runs in the handler: {ask:?}"
    );
    let answer = find("hive.handle", "agent", &echo.to_string());
    assert_eq!(answer.parent, Some(ask.id), "{answer:?}");
    assert_eq!(answer.fields["message_id"], ask.fields["message_id"]);
    assert_eq!(answer.fields["kind"], "Request");
    let sunk = find("hive.handle", "agent", &sink.to_string());
    assert_eq!(sunk.parent, Some(plan.id), "{sunk:?}");
    assert_eq!(by_id(plan.parent.unwrap()).name, "request");
    sys.shutdown(Duration::from_secs(5));
}

#[test]
fn a_sync_agent_handles_in_a_span_and_links_what_it_sends() {
    let _ = recorder();
    let sys = SwarmSystem::builder().build().unwrap();
    let sink = sys.spawn(Sink).unwrap().id();
    let relay = sys
        .spawn_sync(move |m: Message, ctx: &mut hive_core::SyncContext<'_>| {
            let _ = ctx.tell(sink, m.payload);
        })
        .unwrap()
        .id();
    sys.tell(relay, "x").unwrap();
    let relayed = find("hive.handle", "agent", &relay.to_string());
    assert_eq!(relayed.parent, None, "nothing was current at the tell");
    let sunk = find("hive.handle", "agent", &sink.to_string());
    assert_eq!(sunk.parent, Some(relayed.id), "{sunk:?}");
    sys.shutdown(Duration::from_secs(5));
}

#[test]
fn an_ask_from_outside_is_the_parent_of_its_handling() {
    let _ = recorder();
    let sys = SwarmSystem::builder().build().unwrap();
    let echo = sys.spawn(Echo).unwrap().id();
    let reply = sys.ask(echo, "hi", Duration::from_secs(5)).unwrap();
    let request_id = reply.correlation_id.unwrap().to_string();
    let ask = find("hive.ask", "message_id", &request_id);
    assert_eq!(ask.parent, None, "no span was current: a root");
    let answer = find("hive.handle", "message_id", &request_id);
    assert_eq!(answer.parent, Some(ask.id));
    sys.shutdown(Duration::from_secs(5));
}

/// Holds its first message until `gate` opens.
struct Held {
    gate: Arc<tokio::sync::Notify>,
}

impl Agent for Held {
    async fn handle(&mut self, message: Message, _: &mut Context) {
        if message.payload.as_ref() == b"0" {
            self.gate.notified().await;
        }
    }
}

#[test]
fn links_beyond_the_bound_are_forgotten_and_their_spans_start_new_trees() {
    let _ = recorder();
    let sys = SwarmSystem::builder().trace_links(2).build().unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let held = sys.spawn(Held { gate: gate.clone() }).unwrap().id();
    let root = tracing::info_span!("request", case = "bound");
    root.in_scope(|| {
        sys.tell(held, "0").unwrap();
        find("hive.handle", "agent", &held.to_string());
        // Three wait behind the first; the table keeps two links.
        for i in 1..=3 {
            sys.tell(held, i.to_string()).unwrap();
        }
    });
    gate.notify_one();
    let root_id = root.id().unwrap().into_u64();
    let deadline = Instant::now() + Duration::from_secs(10);
    let handled = loop {
        let handled: Vec<Seen> = spans()
            .into_iter()
            .filter(|s| s.name == "hive.handle" && s.fields["agent"] == held.to_string())
            .collect();
        if handled.len() == 4 {
            break handled;
        }
        assert!(Instant::now() < deadline, "{handled:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let linked = handled.iter().filter(|s| s.parent == Some(root_id)).count();
    let roots = handled.iter().filter(|s| s.parent.is_none()).count();
    assert_eq!((linked, roots), (3, 1), "{handled:?}");
    sys.shutdown(Duration::from_secs(5));
}
