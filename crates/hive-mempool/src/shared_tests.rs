//! Unit tests of the shared pool state that need its private parts.

use super::*;

struct Plain;

impl ItemOps<u64> for Plain {
    fn create(&self) -> u64 {
        0
    }

    fn recycle(&self, _: &mut u64, _: usize) -> Option<usize> {
        Some(0)
    }
}

#[test]
fn a_thread_that_inherits_a_slot_registers_its_own_exit_hook() {
    let config = PoolConfig::new("inherit", 32).thread_cache(16);
    let shared = Shared::new(config, Box::new(Plain));
    let before = shared.stored().0;
    let s = shared.clone();
    std::thread::spawn(move || {
        // As if this thread got the id of one that exited: its slot exists,
        // made (and covered by an exit hook) by that other thread.
        let slot = s.locals.get_or(|| CachePadded::new(s.new_local()));
        slot.owner.set(u64::MAX - 1);
        let items: Vec<Box<u64>> = (0..5).map(|_| s.take()).collect();
        for item in items {
            s.give(item);
        }
    })
    .join()
    .unwrap();
    assert_eq!(
        shared.stored().0,
        before.max(5),
        "the cache went back to the store when the thread exited"
    );
}
