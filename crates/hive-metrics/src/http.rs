//! The HTTP endpoint (feature `http`): `/metrics` (Prometheus text),
//! `/metrics.json` (a [`Snapshot`](crate::Snapshot)), `/` (a
//! self-contained live dashboard) and any JSON documents the program adds
//! (hive-core adds `/history.json` and `/alerts.json`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use hive_types::{HiveError, HiveResult};

use crate::HiveRecorder;

/// The dashboard page: inline CSS and JavaScript, no external resource.
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// A JSON document served beside the recorder's, made afresh for each
/// request.
pub type JsonSource = Arc<dyn Fn() -> String + Send + Sync>;

/// How long stopping waits for open connections to finish.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The routes, for serving from your own axum application.
pub fn router(recorder: HiveRecorder) -> Router {
    routes(recorder, Vec::new())
}

/// [`router`] plus `documents`: `(path, source)` pairs served as JSON.
/// Each path starts with `/`, is not one of the recorder's (`/`,
/// `/metrics`, `/metrics.json`) and appears once; otherwise a config error.
pub fn router_with(
    recorder: HiveRecorder,
    documents: Vec<(&'static str, JsonSource)>,
) -> HiveResult<Router> {
    check_paths(&documents)?;
    Ok(routes(recorder, documents))
}

fn check_paths(documents: &[(&'static str, JsonSource)]) -> HiveResult<()> {
    let mut seen = vec!["/", "/metrics", "/metrics.json"];
    for (path, _) in documents {
        if !path.starts_with('/') || seen.contains(path) {
            return Err(HiveError::config(
                "documents",
                format!("{path:?} must start with / and not repeat a served path"),
            ));
        }
        seen.push(path);
    }
    Ok(())
}

fn routes(recorder: HiveRecorder, documents: Vec<(&'static str, JsonSource)>) -> Router {
    let prom = recorder.clone();
    let json = recorder;
    let mut router =
        Router::new()
            .route("/", get(|| async { Html(DASHBOARD_HTML) }))
            .route(
                "/metrics",
                get(move || {
                    let body = prom.render_prometheus();
                    async move {
                        ([(CONTENT_TYPE, crate::prometheus::CONTENT_TYPE)], body).into_response()
                    }
                }),
            )
            .route(
                "/metrics.json",
                get(move || {
                    let body = json.render_json();
                    async move { ([(CONTENT_TYPE, "application/json")], body).into_response() }
                }),
            );
    for (path, source) in documents {
        router = router.route(
            path,
            get(move || {
                let body = source();
                async move { ([(CONTENT_TYPE, "application/json")], body).into_response() }
            }),
        );
    }
    router
}

/// A running endpoint on its own thread (a single-threaded tokio runtime),
/// for programs that have no runtime of their own. Stops when dropped.
///
/// ```no_run
/// use hive_metrics::{HiveRecorder, MetricsServer};
///
/// let recorder = HiveRecorder::new();
/// recorder.install()?;
/// let server = MetricsServer::start(recorder, "127.0.0.1:9898")?;
/// println!("dashboard at http://{}/", server.local_addr());
/// # Ok::<(), hive_types::HiveError>(())
/// ```
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free one) and serves `recorder`.
    pub fn start(recorder: HiveRecorder, addr: impl ToSocketAddrs) -> HiveResult<Self> {
        MetricsServer::start_with(recorder, addr, Vec::new())
    }

    /// [`start`](Self::start) with JSON `documents` beside the recorder's
    /// (see [`router_with`]).
    pub fn start_with(
        recorder: HiveRecorder,
        addr: impl ToSocketAddrs,
        documents: Vec<(&'static str, JsonSource)>,
    ) -> HiveResult<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router_with(recorder, documents)?;
        let thread = std::thread::Builder::new()
            .name("hive-metrics-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn shutdown(mut self) -> HiveResult<()> {
        self.stop_and_join()
    }

    /// Stops serving; waits for open connections at most [`STOP_GRACE`],
    /// then leaves the thread to end with them.
    fn stop_and_join(&mut self) -> HiveResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Dropped on its own thread (a request held the last handle to what
        // it serves): it ends once this request is answered.
        if thread.thread().id() == std::thread::current().id() {
            return Ok(());
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !thread.is_finished() {
            return Err(HiveError::Timeout {
                what: "metrics server stop (a client kept its connection open)",
                after: STOP_GRACE,
            });
        }
        thread.join().map_err(|_| HiveError::Closed {
            what: "metrics server thread",
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}
