//! `App`: everything a request handler needs, shared by both listeners and the
//! background tasks of one node.

use std::sync::Arc;
use std::time::Duration;

use storage::{Command, CommandResult, Ispb, Store};
use tokio_util::sync::CancellationToken;

use crate::activity::StreamActivity;
use crate::config::Config;
use crate::error::ApiError;
use crate::notify::Notifier;
use crate::read_claims::ReadClaims;
use crate::token::KeyRing;

/// Shared state of a running node.
pub struct App {
    pub config: Config,
    pub shards: raft::Shards,
    pub store: Store,
    pub keys: KeyRing,
    pub notifier: Arc<Notifier>,
    /// Which waiting streams of an ISPB go to Raft after a wake-up.
    pub claims: ReadClaims,
    pub activity: Arc<StreamActivity>,
    /// HTTP client for forwarding requests to other nodes' peer listeners.
    pub peer_client: reqwest::Client,
    /// Cancelled when the node shuts down: waiting long polls answer at once.
    pub shutdown: CancellationToken,
}

/// How handlers hold the app.
pub type AppState = Arc<App>;

/// Longest a proposal may wait for its commit: a leader cut off from its replicas
/// cannot commit, and its clients get 503 instead of waiting forever.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

impl App {
    /// Proposes a command to its ISPB's shard and waits for the applied result,
    /// at most `PROPOSE_TIMEOUT`.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, ApiError> {
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.shards.propose(command)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ApiError::Unavailable { reason: "the shard could not commit in time", retry_after_secs: 1 }),
        }
    }

    /// Waits until this node has applied everything the ISPB's shard committed
    /// (`raft::Shards::catch_up`), at most `PROPOSE_TIMEOUT`.
    pub async fn catch_up(&self, ispb: &Ispb) -> Result<(), ApiError> {
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.shards.catch_up(ispb)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ApiError::Unavailable {
                reason: "the shard could not confirm its state in time",
                retry_after_secs: 1,
            }),
        }
    }
}
