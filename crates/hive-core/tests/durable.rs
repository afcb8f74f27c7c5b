//! Agents whose mail comes through JetStream (a real `nats-server -js`):
//! a frame is acknowledged only after `handle` returned; a handler's panic,
//! or its cancellation by the watchdog, hands it back, so the agent sees it
//! again, marked redelivered.
#![cfg(feature = "jetstream")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hive_core::{Agent, Context, Message, Overrun, SwarmSystem, Watchdog};

#[path = "../../hive-messaging/tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
use nats::{connect, durable_swarm, nats_server_binary, JetStreamServer};

/// Panics the first time it sees a message, waits for a go-ahead before it
/// returns from a message called "hold", and logs (payload, redelivered).
struct Flaky {
    log: Arc<Mutex<Vec<(String, bool)>>>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Agent for Flaky {
    async fn handle(&mut self, message: Message, _: &mut Context) {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        let again = message.receipt.as_ref().is_some_and(|r| r.redelivered());
        self.log.lock().unwrap().push((text.clone(), again));
        match text.as_str() {
            "flaky" if !again => panic!("the first try fails"),
            "stuck" if !again => std::future::pending::<()>().await,
            "hold" => {
                let _ = self.gate.acquire().await.unwrap();
            }
            _ => {}
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn frames_are_acknowledged_after_handle_returns_and_a_panic_or_a_cancel_redelivers() {
    let Some(bin) = nats_server_binary() else {
        return;
    };
    let js = JetStreamServer::start(&bin);
    let config = durable_swarm();
    let here = SwarmSystem::builder().build().unwrap();
    let there = SwarmSystem::builder()
        .watchdog(Some(Watchdog {
            limit: Duration::from_millis(300),
            action: Overrun::Cancel,
        }))
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let agent = there
        .spawn(Flaky {
            log: log.clone(),
            gate: gate.clone(),
        })
        .unwrap()
        .id();
    let url = js.server.url();
    let t_there = connect(there.runtime(), there.communicator(), &url, &config);
    let t_here = connect(here.runtime(), here.communicator(), &url, &config);
    let stats = || t_there.durable_stats().unwrap();

    // Acknowledged only once the handler returned.
    here.tell(agent, "hold").unwrap();
    wait_until("the handler to start", || log.lock().unwrap().len() == 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((stats().pending, stats().acknowledged), (1, 0));
    gate.add_permits(1);
    wait_until("the acknowledgement", || stats().acknowledged == 1);
    assert_eq!(stats().pending, 0);

    // A panic hands the frame back; the restarted agent gets it again.
    here.tell(agent, "flaky").unwrap();
    wait_until("the redelivery to be handled", || stats().acknowledged == 2);
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen[1..],
        [("flaky".to_string(), false), ("flaky".to_string(), true)]
    );
    let s = stats();
    assert_eq!((s.failed, s.redelivered, s.pending), (1, 1, 0), "{s:?}");

    // A handler the watchdog cancels did not finish: handed back too.
    here.tell(agent, "stuck").unwrap();
    wait_until("the cancelled one to be handled again", || {
        stats().acknowledged == 3
    });
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log[3..],
        [("stuck".to_string(), false), ("stuck".to_string(), true)]
    );
    assert_eq!(stats().failed, 2);
    here.runtime().block_on(t_here.close());
    there.runtime().block_on(t_there.close());
}
