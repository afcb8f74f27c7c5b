//! Free credits for idle objects (see `shared`'s module docs): every idle
//! object holds one, so idle objects never exceed the target.

use crate::sync::{AtomicIsize, Ordering};

/// The free credits: `target - idle objects - spare credits`; negative
/// after the target shrank, until `trim` drops enough objects.
#[derive(Debug)]
pub(crate) struct Credits(AtomicIsize);

impl Credits {
    pub(crate) fn new(free: usize) -> Self {
        Credits(AtomicIsize::new(
            isize::try_from(free).unwrap_or(isize::MAX),
        ))
    }

    /// Takes up to `n` free credits; 0 when none are free.
    pub(crate) fn acquire(&self, n: usize) -> usize {
        let mut free = self.0.load(Ordering::Acquire);
        loop {
            if free <= 0 {
                return 0;
            }
            let take = free.min(isize::try_from(n).unwrap_or(isize::MAX));
            match self.0.compare_exchange_weak(
                free,
                free - take,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return take.unsigned_abs(),
                Err(now) => free = now,
            }
        }
    }

    /// Gives back `n` credits (objects that left, or spare ones).
    pub(crate) fn give(&self, n: usize) {
        self.0
            .fetch_add(isize::try_from(n).unwrap_or(isize::MAX), Ordering::AcqRel);
    }

    /// Moves the free count by `delta` (the target changed).
    pub(crate) fn shift(&self, delta: isize) {
        self.0.fetch_add(delta, Ordering::AcqRel);
    }

    /// Idle objects over the target: how many `trim` must drop.
    pub(crate) fn owed(&self) -> usize {
        let free = self.0.load(Ordering::Acquire);
        if free < 0 {
            free.unsigned_abs()
        } else {
            0
        }
    }

    /// Free credits now (the loom model).
    #[cfg(hive_loom)]
    pub(crate) fn free(&self) -> isize {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(all(test, hive_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};

    /// Drops idle objects while more are idle than credits allow (the
    /// pool's `trim`).
    fn trim(credits: &Credits, store: &Mutex<usize>) {
        let over = credits.owed();
        let dropped = {
            let mut idle = store.lock().unwrap();
            let n = over.min(*idle);
            *idle -= n;
            n
        };
        credits.give(dropped);
    }

    /// A user returns an object while the target shrinks to zero and
    /// `trim` runs: the books always balance (idle objects plus free
    /// credits equal the target), and after the maintainer's next trim no
    /// object is idle beyond the target.
    #[test]
    fn loom_credits_keep_idle_within_the_target() {
        loom::model(|| {
            // Target 2: one object idle in the store (holding a credit), one
            // out with a user (holding none): one credit is free.
            let credits = Arc::new(Credits::new(1));
            let store = Arc::new(Mutex::new(1usize));
            let user = {
                let (credits, store) = (credits.clone(), store.clone());
                loom::thread::spawn(move || {
                    // The user gives its object back: it needs a credit to stay.
                    if credits.acquire(1) == 1 {
                        *store.lock().unwrap() += 1;
                    }
                })
            };
            let shrink = {
                let (credits, store) = (credits.clone(), store.clone());
                loom::thread::spawn(move || {
                    credits.shift(-2); // target 2 -> 0
                    trim(&credits, &store);
                })
            };
            user.join().unwrap();
            shrink.join().unwrap();
            let idle = *store.lock().unwrap();
            assert_eq!(idle as isize + credits.free(), 0, "the books balance");
            trim(&credits, &store);
            assert_eq!(*store.lock().unwrap(), 0, "idle objects beyond the target");
            assert_eq!(credits.free(), 0);
        });
    }
}
