//! Observability on by default: a system installs its recorder, measures
//! windows, raises regression alerts and (with `serve`) serves all of it
//! over HTTP, where promtool accepts the metrics.
#![cfg(feature = "http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hive_core::metrics::{Alert, WatchConfig};
use hive_core::{Message, SwarmSystem, SyncContext};

// The same outside-tool helpers as hive-metrics' own tool tests.
#[path = "../../hive-metrics/tests/support/outside.rs"]
mod outside;

const WAIT: Duration = Duration::from_secs(30);

/// The body of `GET path`, which must answer 200.
fn get(addr: SocketAddr, path: &str) -> String {
    let (head, body) = outside::get(addr, path);
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body
}

fn json(addr: SocketAddr, path: &str) -> serde_json::Value {
    serde_json::from_str(&get(addr, path)).unwrap()
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A system ticking every 10 ms, keeping `windows` windows of `window`,
/// serving on a free loopback port.
fn served(window: Duration, windows: usize) -> SwarmSystem {
    SwarmSystem::builder()
        .tick_interval(Duration::from_millis(10))
        .history(window, windows)
        .serve("127.0.0.1:0")
        .build()
        .unwrap()
}

/// 1,000 messages to an agent that does nothing with them.
fn handle_some(sys: &SwarmSystem) {
    let agent = sys
        .spawn_sync(|_m: Message, _ctx: &mut SyncContext<'_>| {})
        .unwrap();
    for _ in 0..1000 {
        sys.tell(agent.id(), "x").unwrap();
    }
}

#[test]
fn a_default_system_records_every_component_and_serves_it() {
    let sys = served(Duration::from_millis(50), 100);
    let addr = sys.metrics_addr().unwrap();
    handle_some(&sys);
    assert!(sys.quiesce(WAIT));
    // The messaging crate records through the `metrics` facade: its
    // counter reaching the system's recorder means the recorder is global.
    let recorder = sys.recorder().unwrap();
    until("the messaging counters", || {
        recorder
            .snapshot()
            .counter_total("hive_messaging_delivered_total")
            > 0
    });
    until("two measured windows", || sys.history().len() >= 2);
    let (windows, bytes, most) = sys.report().history.unwrap();
    assert!(
        windows >= 2 && bytes > 0 && bytes <= most,
        "{windows} {bytes} {most}"
    );
    assert_eq!(most, 100 * std::mem::size_of::<hive_core::Window>());
    assert!(sys.report().to_string().contains("Window history kept"));

    let text = get(addr, "/metrics");
    assert!(text.contains("hive_messaging_delivered_total"), "{text}");
    let history = json(addr, "/history.json");
    let windows = history["windows"].as_array().unwrap();
    assert!(!windows.is_empty(), "{history}");
    assert!(windows
        .iter()
        .any(|w| w["handled_per_sec"].as_f64().unwrap() > 0.0));
    assert_eq!(history["max_windows"], 100);
    let alerts = json(addr, "/alerts.json");
    assert!(alerts["alerts"].is_array(), "{alerts}");
    assert!(get(addr, "/").contains("<html"), "the dashboard");

    outside::promtool_accepts(&text);
    sys.shutdown(WAIT);
    assert!(!answers_metrics(addr), "shutdown stops serving");
}

/// Whether a server at `addr` answers `/metrics` with this system's
/// series. Not only "connect fails": another test's server (Prometheus on
/// a free port) may take the port a stopped server gave back.
fn answers_metrics(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let asked = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    asked.is_ok() && answer.contains("hive_messaging_delivered_total")
}

#[test]
fn a_memory_jump_raises_one_alert_to_the_hook_the_system_and_the_endpoint() {
    let heard: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let h = heard.clone();
    let sys = SwarmSystem::builder()
        .tick_interval(Duration::from_millis(10))
        .history(Duration::from_millis(20), 1000)
        .watch(WatchConfig {
            warmup_windows: 3,
            baseline_windows: 5,
            ..WatchConfig::default()
        })
        .on_alert(move |a| h.lock().unwrap().push(a.clone()))
        .serve("127.0.0.1:0")
        .build()
        .unwrap();
    let addr = sys.metrics_addr().unwrap();
    until("a baseline", || sys.history().len() >= 5);
    // Resident memory jumps by far more than the 20% threshold and stays.
    let ballast = vec![7u8; 512 << 20];
    std::hint::black_box(&ballast);
    until("an alert", || !heard.lock().unwrap().is_empty());
    let first = heard.lock().unwrap()[0].clone();
    assert_eq!(first.key, "rss_bytes", "{first}");
    assert!(first.change > 0.2, "{first}");
    assert!(sys.alerts().iter().any(|a| a.key == "rss_bytes"));
    let served = json(addr, "/alerts.json");
    assert!(
        served["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["figure"] == "rss_bytes"),
        "{served}"
    );
    // While the memory stays up, the same regression is not raised again.
    let windows = sys.history().len();
    until("more windows", || sys.history().len() >= windows + 5);
    let rss_alerts = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.key == "rss_bytes")
        .count();
    assert_eq!(rss_alerts, 1);
    drop(ballast);
    sys.shutdown(WAIT);
}

#[test]
fn a_freshly_opened_dashboard_shows_the_history_and_alerts_the_server_kept() {
    let Some(chromium) = outside::tool("chromium") else {
        return;
    };
    let sys = served(Duration::from_millis(20), 1000);
    handle_some(&sys);
    // Windows pile up before any page is open: a new page (a reload) must
    // show them, from the server.
    until("windows", || sys.history().len() >= 10);
    let url = format!("http://{}/", sys.metrics_addr().unwrap());
    let dom = outside::chromium_dom(chromium, &url, 3000);
    let points = outside::chart_points(&dom, "history");
    assert!(points >= 10, "the page drew {points} of the kept windows");
    // Another test here moves this process's memory: there may be alerts.
    assert!(dom.contains("data-alerts="), "the alerts panel:\n{dom}");
    sys.shutdown(WAIT);
}
