//! Receipts: how a durable transport learns that a message was handled.
//!
//! A message that arrives through a transport with acknowledgements (hive
//! over NATS JetStream) carries a [`Receipt`]. The receipt is shared by
//! every message that travelled in the same transport message (a frame)
//! and by their clones; when the last of them is dropped, the transport is
//! told the [`Outcome`]: `Handled` acknowledges the frame, `Failed` asks for
//! a redelivery. Dropping a message after handling it is all a receiver
//! does; a handler that wants the frame again calls [`Receipt::fail`]. A
//! message dropped while its thread unwinds from a panic fails too.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use hive_types::{AgentId, Message, Outcome, Receipt};
//!
//! let told = Arc::new(Mutex::new(None));
//! let seen = told.clone();
//! let receipt = Receipt::new(1, move |outcome| *seen.lock().unwrap() = Some(outcome));
//!
//! let mut m = Message::new(AgentId::random(), AgentId::random(), "job");
//! m.receipt = Some(receipt);
//! let copy = m.clone();
//! drop(m);
//! assert_eq!(*told.lock().unwrap(), None); // a copy still lives
//! drop(copy);
//! assert_eq!(*told.lock().unwrap(), Some(Outcome::Handled));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What became of the messages sharing a [`Receipt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every one was dropped normally: handled (or expired, or deliberately
    /// discarded).
    Handled,
    /// One was marked failed ([`Receipt::fail`]) or dropped during a panic:
    /// deliver them again.
    Failed,
}

type Settle = Box<dyn FnOnce(Outcome) + Send + Sync>;

struct Inner {
    deliveries: u32,
    failed: AtomicBool,
    settle: Option<Settle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let failed = self.failed.load(Ordering::Acquire) || std::thread::panicking();
        if let Some(settle) = self.settle.take() {
            settle(if failed {
                Outcome::Failed
            } else {
                Outcome::Handled
            });
        }
    }
}

/// Tells a transport when the messages that share it are gone (see
/// [`Message::receipt`](crate::Message::receipt)): the last clone dropped
/// settles it, `Failed` if [`fail`](Self::fail) was called or it was dropped
/// during a panic, else `Handled`. Cloning shares it.
#[derive(Clone)]
pub struct Receipt(Arc<Inner>);

impl Receipt {
    /// A receipt for a transport message delivered for the `deliveries`th
    /// time (1 the first time); `settle` runs once, when the last clone is
    /// dropped.
    pub fn new(deliveries: u32, settle: impl FnOnce(Outcome) + Send + Sync + 'static) -> Self {
        Receipt(Arc::new(Inner {
            deliveries,
            failed: AtomicBool::new(false),
            settle: Some(Box::new(settle)),
        }))
    }

    /// How many times the transport has delivered this message (1 the
    /// first time).
    pub fn deliveries(&self) -> u32 {
        self.0.deliveries
    }

    /// Whether it was delivered before (to this process or to one that
    /// died, or failed): an idempotent handler checks what it did already.
    pub fn redelivered(&self) -> bool {
        self.0.deliveries > 1
    }

    /// Asks for a redelivery of every message sharing this receipt once
    /// they are all dropped.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }

    /// Whether [`fail`](Self::fail) was called.
    pub fn is_failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("deliveries", &self.0.deliveries)
            .field("failed", &self.is_failed())
            .finish()
    }
}

/// Holds a receipt across work that may not finish (a task that can be
/// aborted, a handler future a watchdog may drop): dropped before
/// [`done`](Self::done), it fails the receipt, so only finished work counts
/// as handled.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use hive_types::{Outcome, Receipt, ReceiptGuard};
///
/// let told = Arc::new(Mutex::new(None));
/// let seen = told.clone();
/// let receipt = Receipt::new(1, move |o| *seen.lock().unwrap() = Some(o));
/// let guard = ReceiptGuard::new(Some(receipt));
/// drop(guard); // the work was cancelled
/// assert_eq!(*told.lock().unwrap(), Some(Outcome::Failed));
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard fails the receipt"]
pub struct ReceiptGuard(Option<Receipt>);

impl ReceiptGuard {
    /// Guards `receipt` (nothing to do for `None`).
    pub fn new(receipt: Option<Receipt>) -> Self {
        ReceiptGuard(receipt)
    }

    /// The guarded receipt.
    pub fn receipt(&self) -> Option<&Receipt> {
        self.0.as_ref()
    }

    /// The work finished: let go of the receipt without failing it.
    pub fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for ReceiptGuard {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.fail();
        }
    }
}

/// Receipts are bookkeeping, not content: any two compare equal, so two
/// messages with the same fields are equal whether or not they carry one.
impl PartialEq for Receipt {
    fn eq(&self, _: &Receipt) -> bool {
        true
    }
}

impl Eq for Receipt {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    fn watched() -> (Receipt, Arc<Mutex<Vec<Outcome>>>) {
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        let r = Receipt::new(2, move |o| seen.lock().unwrap().push(o));
        (r, told)
    }

    #[test]
    fn settles_once_when_the_last_clone_goes() {
        let (r, told) = watched();
        let (a, b) = (r.clone(), r.clone());
        drop(r);
        drop(a);
        assert!(told.lock().unwrap().is_empty());
        assert!(b.redelivered());
        drop(b);
        assert_eq!(*told.lock().unwrap(), vec![Outcome::Handled]);
    }

    #[test]
    fn a_failed_clone_fails_them_all() {
        let (r, told) = watched();
        r.clone().fail();
        drop(r);
        assert_eq!(*told.lock().unwrap(), vec![Outcome::Failed]);
    }

    #[test]
    fn a_guard_fails_unless_done() {
        let (r, told) = watched();
        ReceiptGuard::new(Some(r.clone())).done();
        drop(r);
        assert_eq!(*told.lock().unwrap(), vec![Outcome::Handled]);
        let (r, told) = watched();
        drop(ReceiptGuard::new(Some(r)));
        assert_eq!(*told.lock().unwrap(), vec![Outcome::Failed]);
    }

    #[test]
    fn dropped_in_a_panic_fails() {
        let (r, told) = watched();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = r;
            panic!("handler failed");
        }));
        assert!(result.is_err());
        assert_eq!(*told.lock().unwrap(), vec![Outcome::Failed]);
    }
}
