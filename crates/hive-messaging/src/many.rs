//! Sending many messages in one call: [`Sender::send_many`] and
//! [`Sender::resend`].

use hive_types::{Message, Recipient, Rejected};

use crate::sender::{Refusal, Sender};
use hive_types::sync::lock;

impl Sender {
    /// Sends every message in order, taking this sender's lock once for each
    /// run of messages that fit; a message that does not fit waits as in
    /// [`send`](Self::send). Stops at the first refusal and hands that
    /// message back; the rest of the iterator is left unconsumed.
    pub fn send_many(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<usize, Rejected<Message>> {
        let mut sent = 0;
        let mut iter = messages.into_iter().peekable();
        while iter.peek().is_some() {
            let blocked = {
                let mut state = lock(&self.core.state);
                loop {
                    let Some(m) = iter.next() else { break None };
                    let Recipient::Agent(to) = m.recipient else {
                        break Some(m);
                    };
                    match self.accept(&mut state, to, m) {
                        Ok(()) => sent += 1,
                        Err((m, Refusal::Full(_))) => break Some(m),
                        Err((m, refusal)) => return Err(Rejected::new(m, refusal.into_error())),
                    }
                }
            };
            if let Some(m) = blocked {
                self.send(m)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends again messages that were not delivered (from
    /// [`Communicator::take_undelivered`](crate::Communicator::take_undelivered)),
    /// each with its original id, so a receiver that already has one drops
    /// the copy. Waits for room like [`send`](Self::send); stops at the
    /// first refusal and hands that message back. Returns how many went.
    pub fn resend(
        &self,
        undelivered: impl IntoIterator<Item = crate::Undelivered>,
    ) -> Result<usize, Rejected<Message>> {
        let mut sent = 0;
        for u in undelivered {
            self.send(u.message)?;
            sent += 1;
        }
        Ok(sent)
    }
}
