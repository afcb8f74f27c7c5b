//! Typed payloads (feature `json`): requests and replies as your own serde
//! types, carried as JSON in the message's `Bytes`.
//!
//! ```
//! use std::time::Duration;
//! use hive_core::json::JsonPayload;
//! use hive_core::{Agent, Context, Message, SwarmSystem};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Score { text: String }
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Scored { words: usize }
//!
//! struct Scorer;
//!
//! impl Agent for Scorer {
//!     async fn handle(&mut self, m: Message, ctx: &mut Context) {
//!         match m.json::<Score>() {
//!             Ok(Score { text }) => {
//!                 let words = text.split_whitespace().count();
//!                 let _ = ctx.reply_json(&m, &Scored { words }).await;
//!             }
//!             Err(e) => { let _ = ctx.reply(&m, e.to_string()).await; }
//!         }
//!     }
//! }
//!
//! let system = SwarmSystem::builder().build()?;
//! let scorer = system.spawn(Scorer)?;
//! let request = Score { text: "to be or not".into() };
//! let answer: Scored = scorer.ask_json(&request, Duration::from_secs(5))?;
//! assert_eq!(answer, Scored { words: 4 });
//! system.shutdown(Duration::from_secs(5));
//! # Ok::<(), hive_core::HiveError>(())
//! ```

use std::time::Duration;

use bytes::Bytes;
use hive_types::{AgentId, HiveError, HiveResult, Message};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::{Context, SyncContext};
use crate::spawn::AgentRef;

/// Encodes `value` as a JSON payload.
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> HiveResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| HiveError::Payload {
            what: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
}

/// Decodes a JSON payload as `T`.
pub fn from_payload<T: DeserializeOwned>(payload: &[u8]) -> HiveResult<T> {
    serde_json::from_slice(payload).map_err(|e| HiveError::Payload {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Reads a message's payload as a serde type.
pub trait JsonPayload {
    /// The payload decoded from JSON as `T`.
    fn json<T: DeserializeOwned>(&self) -> HiveResult<T>;
}

impl JsonPayload for Message {
    fn json<T: DeserializeOwned>(&self) -> HiveResult<T> {
        from_payload(&self.payload)
    }
}

impl AgentRef {
    /// Sends it `value` as JSON (see [`tell`](Self::tell)).
    pub fn tell_json<T: Serialize + ?Sized>(&self, value: &T) -> HiveResult<()> {
        self.tell(to_payload(value)?).map_err(HiveError::from)
    }

    /// Asks it with `request` as JSON and decodes the reply as `R` (see
    /// [`ask`](Self::ask)).
    pub fn ask_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        request: &T,
        timeout: Duration,
    ) -> HiveResult<R> {
        self.ask(to_payload(request)?, timeout)?.json()
    }

    /// [`ask_json`](Self::ask_json) from async code.
    pub async fn ask_json_async<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        request: &T,
        timeout: Duration,
    ) -> HiveResult<R> {
        self.ask_async(to_payload(request)?, timeout).await?.json()
    }
}

impl Context {
    /// Sends `value` to `to` as JSON (see [`tell`](Self::tell)).
    pub async fn tell_json<T: Serialize + ?Sized>(&self, to: AgentId, value: &T) -> HiveResult<()> {
        self.tell(to, to_payload(value)?)
            .await
            .map_err(HiveError::from)
    }

    /// Answers `request` with `value` as JSON (see [`reply`](Self::reply)).
    pub async fn reply_json<T: Serialize + ?Sized>(
        &self,
        request: &Message,
        value: &T,
    ) -> HiveResult<()> {
        self.reply(request, to_payload(value)?)
            .await
            .map_err(HiveError::from)
    }

    /// Asks `to` with `request` as JSON and decodes the reply as `R` (see
    /// [`ask`](Self::ask)).
    pub async fn ask_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        to: AgentId,
        request: &T,
        timeout: Duration,
    ) -> HiveResult<R> {
        self.ask(to, to_payload(request)?, timeout).await?.json()
    }
}

impl SyncContext<'_> {
    /// Sends `value` to `to` as JSON (see [`tell`](Self::tell)).
    pub fn tell_json<T: Serialize + ?Sized>(&self, to: AgentId, value: &T) -> HiveResult<()> {
        self.tell(to, to_payload(value)?).map_err(HiveError::from)
    }

    /// Answers `request` with `value` as JSON (see [`reply`](Self::reply)).
    pub fn reply_json<T: Serialize + ?Sized>(
        &self,
        request: &Message,
        value: &T,
    ) -> HiveResult<()> {
        self.reply(request, to_payload(value)?)
            .map_err(HiveError::from)
    }

    /// Asks `to` with `request` as JSON and blocks for the reply, decoded
    /// as `R` (see [`ask`](Self::ask)).
    pub fn ask_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        to: AgentId,
        request: &T,
        timeout: Duration,
    ) -> HiveResult<R> {
        self.ask(to, to_payload(request)?, timeout)?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Task {
        id: u32,
        text: String,
    }

    #[test]
    fn a_payload_round_trips_and_a_wrong_type_is_a_typed_error() {
        let task = Task {
            id: 7,
            text: "rank these".into(),
        };
        let m = Message::new(AgentId::nil(), AgentId::nil(), to_payload(&task).unwrap());
        assert_eq!(m.json::<Task>().unwrap(), task);
        let wrong = m.json::<Vec<u8>>().unwrap_err();
        assert!(matches!(wrong, HiveError::Payload { .. }), "{wrong}");
    }
}
