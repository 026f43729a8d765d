//! The producer side of the domain (SPEC.md §3): `AppendService` checks every
//! message of a request (size, SPI envelope, supplied resource id), gives each its
//! resource id and dedupe key, and proposes one all-or-nothing `Append`; the outcome
//! is known only after the append is committed. No HTTP here: `api::produce` reads
//! and splits the body and renders the JSON answer.
//!
//! Layout: `message` (one incoming message checked into a `NewMessage`).

mod message;

use std::sync::Arc;

use storage::{AppendOutcome, Command, CommandResult, Ispb};

pub use message::{Incoming, new_resource_id};

use crate::config::Config;
use crate::context::RequestContext;
use crate::error::Error;
use crate::shard_client::ShardClient;
use wire::clock::now_ms;

/// Appends of one node.
pub struct AppendService {
    config: Arc<Config>,
    shards: ShardClient,
}

impl AppendService {
    /// The service over the node's shards.
    pub fn new(config: Arc<Config>, shards: ShardClient) -> AppendService {
        AppendService { config, shards }
    }

    /// Validates `incoming` (in request order; one bad message refuses them all,
    /// naming its 1-based part) and appends it to the ISPB's log. One outcome per
    /// message, in request order; duplicates report their original seq and id.
    pub async fn append(
        &self,
        ctx: &RequestContext,
        ispb: Ispb,
        incoming: Vec<Incoming>,
    ) -> Result<Vec<AppendOutcome>, Error> {
        // Supplied ids first, for every part, then each message's size and envelope.
        let supplied = incoming
            .iter()
            .enumerate()
            .map(|(index, message)| message.supplied_resource_id(index + 1))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut messages = Vec::with_capacity(incoming.len());
        for ((index, message), supplied) in incoming.into_iter().enumerate().zip(supplied) {
            messages.push(message.check(&ispb, index + 1, supplied, self.config.max_message_bytes)?);
        }
        let count = messages.len();
        let command = Command::Append {
            ispb,
            now_ms: now_ms(),
            auto_create: self.config.auto_create(),
            dedupe_window_ms: self.config.dedupe_window.as_millis() as u64,
            messages,
            origin: ctx.origin(),
        };
        match self.shards.propose(command).await? {
            CommandResult::Appended(outcomes) => {
                tracing::debug!(request_id = %ctx.request_id, %ispb, count, "appended");
                Ok(outcomes)
            }
            CommandResult::Rejected(rejection) => Err(rejection.into()),
            other => Err(Error::Internal(format!("unexpected append result {other:?}"))),
        }
    }
}
