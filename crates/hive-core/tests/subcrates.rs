//! Each re-exported component works through the facade.
// Helpers outside #[test] functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use hive_core::{AgentId, Message, Priority};

#[test]
fn messaging() {
    let comm = hive_core::messaging::Communicator::new(Default::default()).unwrap();
    let a = AgentId::random();
    let mut mb = comm.register(a).unwrap();
    comm.sender().send(Message::new(a, a, "x")).unwrap();
    assert_eq!(mb.recv().unwrap().payload.as_ref(), b"x");
}

#[test]
fn cpubalance() {
    let b = hive_core::cpubalance::Balancer::new(Default::default()).unwrap();
    assert_eq!(
        b.submit(Priority::High, || 2 + 2).unwrap().join().unwrap(),
        4
    );
}

#[cfg(feature = "mempool")]
#[test]
fn mempool() {
    let pool = hive_core::mempool::Pool::<String>::new(hive_core::mempool::PoolConfig::new("p", 4))
        .unwrap();
    pool.pull().push('x');
    assert!(pool.pull().is_empty());
}

#[cfg(feature = "metrics")]
#[test]
fn metrics() {
    let r = hive_core::metrics::HiveRecorder::new();
    metrics::with_local_recorder(&r, || metrics::counter!("x_total").increment(1));
    assert_eq!(r.snapshot().counter_total("x_total"), 1);
}

#[test]
fn types() {
    assert!(hive_core::types::Priority::Critical > hive_core::types::Priority::Low);
}
