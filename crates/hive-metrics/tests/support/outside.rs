//! Outside tools for the tests that check hive's metrics against them:
//! promtool, headless Chromium, a plain HTTP GET. hive-core's tests include
//! this file too (`#[path]`), so both crates drive the tools one way.
//!
//! Locally a missing tool skips its check with a note; with `HIVE_CI=1`
//! (set by `.ci/run`, which installs them) it fails.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The tool's path, or `None` (with a note) when it is missing locally.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("HIVE_CI").is_some() {
        panic!("{name} is required in CI (.ci/run installs it) but was not found");
    }
    eprintln!("note: {name} not installed; this check is skipped locally (CI requires it)");
    None
}

/// `GET path`: the response's head and body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// `promtool check metrics` on `text`: it must accept it with no lint
/// finding (skipped when promtool is missing locally).
pub(crate) fn promtool_accepts(text: &str) {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejected:\n{report}\n---\n{text}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}\n---\n{text}"
    );
}

/// The DOM headless Chromium has after loading `url` and running its
/// scripts for `virtual_ms` of virtual time.
pub(crate) fn chromium_dom(chromium: PathBuf, url: &str, virtual_ms: u32) -> String {
    let profile = std::env::temp_dir().join(format!(
        "hive-chromium-{}-{}",
        std::process::id(),
        url.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--virtual-time-budget={virtual_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Points drawn by the dashboard chart for `metric` (its `data-points`).
pub(crate) fn chart_points(dom: &str, metric: &str) -> usize {
    let at = dom
        .find(&format!("data-metric=\"{metric}\" data-points=\""))
        .unwrap_or_else(|| panic!("no chart for {metric}:\n{dom}"));
    dom[at..]
        .split("data-points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}
