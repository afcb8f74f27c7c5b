//! Checks against outside tools: promtool validates the exposition text;
//! the HTTP endpoint serves it; headless Chromium renders the dashboard.
//! Locally a missing tool skips its test with a note; with `HIVE_CI=1` (set
//! by `.ci/run`, which installs them) it fails.
#![cfg(feature = "http")]
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hive_metrics::{HiveRecorder, MetricsServer};

#[path = "support/outside.rs"]
mod outside;
use outside::{chart_points, chromium_dom, get, promtool_accepts, tool};

const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\">";

fn recorder_with_data() -> HiveRecorder {
    let r = HiveRecorder::new();
    metrics::with_local_recorder(&r, || {
        metrics::describe_counter!("hive_messaging_delivered_total", "Messages delivered");
        metrics::counter!("hive_messaging_delivered_total").increment(12_345);
        metrics::counter!("hive_cpu_tasks_completed_total", "class" => "high").increment(99);
        // Two counters Prometheus would see under one name.
        metrics::counter!("jobs").increment(1);
        metrics::counter!("jobs_total").increment(2);
        metrics::gauge!("hive_pool_hit_ratio", "pool" => "strings").set(0.97);
        metrics::gauge!("hive_pool_hit_ratio", "pool" => "byte_buffers").set(0.91);
        // A pool never pulled from: no hit rate, listed as unused.
        metrics::counter!("hive_pool_hits_total", "pool" => "spare").absolute(0);
        metrics::counter!("hive_pool_misses_total", "pool" => "spare").absolute(0);
        // A hostile label: shown as text, never run as markup.
        metrics::gauge!("hive_pool_hit_ratio", "pool" => HOSTILE).set(0.5);
        metrics::gauge!("hive_cpu_worker_busy_ratio", "worker" => "0").set(0.75);
        metrics::gauge!("hive_cpu_worker_busy_ratio", "worker" => "1").set(0.25);
        metrics::gauge!("hive_wire_compression_ratio", "codec" => "zstd").set(3.4);
        metrics::gauge!("odd", "label" => "quote\" back\\slash\nnewline").set(f64::NAN);
        let h = metrics::histogram!("hive_messaging_batch_latency_seconds");
        for i in 1..=1000 {
            h.record(f64::from(i) * 1e-5);
        }
    });
    r
}

#[test]
fn promtool_accepts_the_exposition_text() {
    promtool_accepts(&recorder_with_data().render_prometheus());
}

#[test]
fn the_endpoint_serves_text_json_and_the_dashboard() {
    let server = MetricsServer::start(recorder_with_data(), "127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(
        body.contains("hive_messaging_delivered_total 12345"),
        "{body}"
    );
    let (head, body) = get(addr, "/metrics.json");
    assert!(head.contains("application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Two hive counters, two of an unused pool, jobs, jobs_collided and
    // the collision count.
    assert_eq!(json["counters"].as_array().unwrap().len(), 7);
    let (_, page) = get(addr, "/");
    assert!(
        page.contains("<svg") || page.contains("metrics.json"),
        "the dashboard page"
    );
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "fetch(\"http",
        "import ",
    ] {
        assert!(!page.contains(external), "no external resource: {external}");
    }
    server.shutdown().unwrap();
}

#[test]
fn extra_documents_need_paths_of_their_own() {
    let doc: hive_metrics::JsonSource = std::sync::Arc::new(|| "{}".to_string());
    for path in ["/metrics", "/", "history.json"] {
        let started = MetricsServer::start_with(
            HiveRecorder::new(),
            "127.0.0.1:0",
            vec![(path, doc.clone())],
        );
        assert!(
            matches!(started, Err(hive_metrics::HiveError::Config { .. })),
            "{path} was accepted"
        );
    }
    let twice = vec![("/a.json", doc.clone()), ("/a.json", doc.clone())];
    assert!(MetricsServer::start_with(HiveRecorder::new(), "127.0.0.1:0", twice).is_err());
    let server =
        MetricsServer::start_with(HiveRecorder::new(), "127.0.0.1:0", vec![("/a.json", doc)])
            .unwrap();
    let (head, body) = get(server.local_addr(), "/a.json");
    assert!(head.contains("application/json"), "{head}");
    assert_eq!(body, "{}");
}

#[test]
fn chromium_draws_the_dashboard_from_recorded_data() {
    let Some(chromium) = tool("chromium") else {
        return;
    };
    let server = MetricsServer::start(recorder_with_data(), "127.0.0.1:0").unwrap();
    let dom = chromium_dom(chromium, &format!("http://{}/", server.local_addr()), 4000);
    let points = |metric: &str| chart_points(&dom, metric);
    for metric in [
        "throughput",
        "latency",
        "hive_pool_hit_ratio",
        "hive_cpu_worker_busy_ratio",
        "hive_wire_compression_ratio",
    ] {
        assert!(points(metric) > 0, "chart {metric} drew no points:\n{dom}");
    }
    assert!(
        dom.contains("data-latest=\"0.97\""),
        "the strings pool's hit rate is shown:\n{dom}"
    );
    assert!(dom.contains("97.0%"), "a ratio reads as a percentage");
    assert!(
        dom.contains("unused (never pulled from): spare"),
        "a pool nobody pulled from reads as unused:\n{dom}"
    );
    assert!(
        dom.contains("<title>hive: live metrics</title>") && !dom.contains("pwned</title>"),
        "a label's markup ran in the page:\n{dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror="),
        "the hostile label is shown as text"
    );
    assert!(
        dom.contains("this server keeps no history"),
        "no /history.json here: said so"
    );
    assert!(
        dom.contains("data-latest=\"3.4\""),
        "the compression ratio is shown"
    );
    assert!(
        dom.contains("data-samples="),
        "the page polled /metrics.json"
    );
}

/// Kills and removes a Prometheus server started by a test.
struct Server(std::process::Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_prometheus_server_scrapes_the_endpoint_and_answers_histogram_quantile() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let endpoint = MetricsServer::start(recorder_with_data(), "127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("hive-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: hive\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            endpoint.local_addr()
        ),
    )
    .unwrap();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child, dir);
    let query =
        "/api/v1/query?query=histogram_quantile(0.99,hive_messaging_batch_latency_seconds_bucket)";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let value = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer from Prometheus"
        );
        std::thread::sleep(Duration::from_millis(250));
        let Ok(mut s) = TcpStream::connect(web) else {
            continue; // still starting
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = write!(
            s,
            "GET {query} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"
        );
        let mut response = String::new();
        if s.read_to_string(&mut response).is_err() {
            continue;
        }
        let Some((_, body)) = response.split_once("\r\n\r\n") else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
            continue;
        };
        if let Some(v) = json["data"]["result"][0]["value"][1].as_str() {
            break v.parse::<f64>().unwrap();
        }
    };
    // 1,000 samples of 10 us .. 10 ms: the 99th percentile is 9.9 ms.
    assert!(
        value > 0.005 && value <= 0.01,
        "histogram_quantile said {value}"
    );
}
