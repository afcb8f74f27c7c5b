//! What every transport shares (TCP and NATS): the link's write queue, the
//! frames in flight and how they end, the delivery of received messages to
//! local agents with duplicates dropped, and one set of counters.
//!
//! ## Delivery status
//!
//! Every message a transport accepts ends in exactly one of three states:
//!
//! - **delivered**: the receiving process acknowledged it (it was handed
//!   to a local mailbox there);
//! - **not delivered** ([`UndeliveredReason::NotSent`](crate::UndeliveredReason::NotSent),
//!   or `NoRecipient` when nobody was there to take it): it is known
//!   never to have arrived;
//! - **unknown** ([`UndeliveredReason::Unknown`](crate::UndeliveredReason::Unknown)):
//!   it left but no acknowledgement came (the peer or the connection died).
//!
//! The last two come back through
//! [`Communicator::take_undelivered`](crate::Communicator::take_undelivered)
//! with their reason. Receivers drop duplicates by message id within the
//! last `dedup_window` ids they took from other processes, so resending the
//! unknown ones ([`Sender::resend`](crate::Sender::resend)) is safe.

mod deliver;
mod queue;
mod stats;

pub(crate) use deliver::{deliver, Target};
#[cfg(feature = "tcp")]
pub(crate) use queue::InFlight;
pub(crate) use queue::{LinkQueue, Unframed};
pub(crate) use stats::Counters;
pub use stats::TransportStats;
