//! `App`: what one node's request handlers and background tasks share — the
//! configuration, the shard groups, the domain services and the peer client.

use std::sync::Arc;

use storage::Store;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::audit::AccessEvents;
use crate::audit::sealer::Sealer;
use crate::config::Config;
use crate::load::Load;
use crate::metrics::Metrics;
use crate::produce::AppendService;
use crate::pull::PullService;
use crate::throttle::RateLimits;

/// Shared state of a running node.
pub struct App {
    pub config: Arc<Config>,
    /// The shard groups: forwarding, peer RPCs, membership admin, readiness.
    pub shards: raft::Shards,
    /// The node's database (the services read and write it through the shards).
    pub store: Store,
    /// Opening, continuing and closing streams.
    pub pull: Arc<PullService>,
    /// Producer appends.
    pub append: AppendService,
    /// HTTP client for forwarding requests to other nodes' peer listeners.
    pub peer_client: reqwest::Client,
    /// `https` when the peer listeners speak TLS, else `http`.
    pub peer_scheme: &'static str,
    /// The access rules of the public and internal listeners.
    pub access: Access,
    /// Per-ISPB request rate limits of the public API.
    pub rate_limits: RateLimits,
    /// Requests in flight, for load shedding.
    pub load: Arc<Load>,
    /// Signs and proposes checkpoints of the audit chains (and seals on request).
    pub sealer: Arc<Sealer>,
    /// The rate bound of access events recorded in the audit chains.
    pub access_events: AccessEvents,
    /// Request counters and histograms of this node (`/metrics`).
    pub metrics: Metrics,
    /// Cancelled when the node shuts down.
    pub shutdown: CancellationToken,
}

/// How handlers hold the app.
pub type AppState = Arc<App>;
