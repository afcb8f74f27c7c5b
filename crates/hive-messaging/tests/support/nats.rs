//! A real `nats-server` for the NATS tests: started on a free loopback
//! port, stopped (killed) when dropped. Locally a missing binary skips the
//! tests with a note; with `HIVE_CI=1` (set by `.ci/run`, which installs
//! it) it fails them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hive_messaging::nats::NatsConfig;

pub(crate) fn nats_server_binary() -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join("nats-server");
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("HIVE_CI").is_some() {
        panic!("nats-server is required in CI (.ci/run installs it) but was not found");
    }
    eprintln!("note: nats-server not installed; NATS tests are skipped locally (CI requires them)");
    None
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server child process, killed when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
    args: Vec<String>,
    binary: PathBuf,
}

impl Server {
    pub(crate) fn start(binary: &PathBuf, port: u16, extra: &[String]) -> Server {
        let mut args = vec![
            "-a".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        args.extend_from_slice(extra);
        let child = Command::new(binary)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            port,
            args,
            binary: binary.clone(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub(crate) fn restart(&mut self) {
        self.stop();
        std::thread::sleep(Duration::from_millis(200));
        self.start_again();
    }

    /// Kills the server (SIGKILL): clients see the connection drop.
    pub(crate) fn stop(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again on the same port, with the same arguments.
    pub(crate) fn start_again(&mut self) {
        self.child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.wait_ready();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config on a swarm name of its own, so tests sharing a server never
/// see each other's traffic.
pub(crate) fn swarm() -> NatsConfig {
    NatsConfig {
        swarm: format!("t{}", fastrand::u32(..)),
        ..NatsConfig::default()
    }
}

/// A nats-server with JetStream, its store in a temporary directory
/// (removed when dropped, after the server).
#[cfg(feature = "jetstream")]
pub(crate) struct JetStreamServer {
    pub(crate) server: Server,
    _store: tempfile::TempDir,
}

#[cfg(feature = "jetstream")]
impl JetStreamServer {
    pub(crate) fn start(binary: &PathBuf) -> JetStreamServer {
        let store = tempfile::tempdir().unwrap();
        let dir = store.path().to_string_lossy().into_owned();
        let server = Server::start(binary, free_port(), &["-js".into(), "-sd".into(), dir]);
        JetStreamServer {
            server,
            _store: store,
        }
    }
}

/// A swarm of its own with durable (JetStream) agent mail, tuned so that
/// crashes are noticed within a second or two.
#[cfg(feature = "jetstream")]
pub(crate) fn durable_swarm() -> NatsConfig {
    use hive_messaging::nats::DurableConfig;
    NatsConfig {
        durable: Some(DurableConfig {
            ack_wait: Duration::from_secs(2),
            publish_timeout: Duration::from_secs(1),
            backoff: vec![Duration::from_millis(50)],
            ..DurableConfig::default()
        }),
        ..swarm()
    }
}

/// Connects `comm` to `url` on `rt`, failing the test if it cannot.
pub(crate) fn connect(
    rt: &tokio::runtime::Handle,
    comm: &hive_messaging::Communicator,
    url: &str,
    config: &NatsConfig,
) -> hive_messaging::nats::NatsTransport {
    rt.block_on(hive_messaging::nats::NatsTransport::connect(
        comm,
        url,
        config.clone(),
    ))
    .unwrap()
}
