//! `App`: everything a request handler needs, shared by both listeners and the
//! background tasks of one node.

use std::sync::Arc;

use storage::Store;
use tokio_util::sync::CancellationToken;

use crate::activity::StreamActivity;
use crate::config::Config;
use crate::notify::Notifier;
use crate::token::KeyRing;

/// Shared state of a running node.
pub struct App {
    pub config: Config,
    pub shards: raft::Shards,
    pub store: Store,
    pub keys: KeyRing,
    pub notifier: Arc<Notifier>,
    pub activity: Arc<StreamActivity>,
    /// HTTP client for forwarding requests to other nodes' peer listeners.
    pub peer_client: reqwest::Client,
    /// Cancelled when the node shuts down: waiting long polls answer at once.
    pub shutdown: CancellationToken,
}

/// How handlers hold the app.
pub type AppState = Arc<App>;
