//! Cluster status and leader transfer on the internal listener (SPEC.md §4, §5).
//!
//! - `GET /internal/v1/cluster/status` (roles `operator`, `auditor`): every node
//!   (id, region, peer address) and every shard — voters, learners, leader, term,
//!   last log, applied, snapshot and purged index, and on the leader each
//!   follower's matched index and lag in entries. Each shard is described by its
//!   leader (`seen_from`), asked over the peer listener; when no leader answers, by
//!   this node if it hosts the shard, with `error` saying why.
//! - `GET /internal/v1/cluster/shards/{shard}`: one shard as the node serving it sees
//!   it; forwarded to the shard's leader like any request of one of its ISPBs.
//! - `POST /internal/v1/cluster/shards/{shard}/leader` with `{"to": N}` (role
//!   `operator`): makes voter N the shard's leader (`raft::Shards::transfer_leadership`;
//!   the shard takes no commands for about one election timeout). Served by the
//!   leader; 200 with the shard afterwards, 400 for an unknown shard or a node that
//!   is not a voter, 503 when N did not win in time (the old leader leads on).
//!   Recorded in the cluster's audit chain (`cluster.leader_transfer`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use raft::ServerState;
use serde::{Deserialize, Serialize};
use storage::audit::AuditAction;

use crate::api::forward::{FORWARD_HOPS, FORWARD_PREFIX, target_node};
use crate::api::json_body::json_object;
use crate::api::path::ShardSegment;
use crate::api::{ApiError, audit_refusals};
use crate::app::{App, AppState};
use crate::context::RequestContext;

/// How long one shard's view may take to arrive from its leader.
const SHARD_VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer of `GET /internal/v1/cluster/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: u64,
    pub nodes: Vec<NodeView>,
    pub shards: Vec<ShardView>,
}

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u64,
    pub region: String,
    pub peer_addr: String,
}

/// One shard's Raft group as node `seen_from` sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardView {
    pub shard: u32,
    pub seen_from: u64,
    /// `leader`, `follower`, `candidate` or `learner` (of `seen_from`).
    pub role: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    /// Per follower, on the leader only.
    pub followers: Vec<FollowerView>,
    /// Why the leader's own view is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How far one follower is behind the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerView {
    pub node: u64,
    pub matched_index: u64,
    pub lag_entries: u64,
}

/// The body of a leader transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderTransfer {
    /// The voter that should lead the shard.
    pub to: u64,
}

/// `GET /internal/v1/cluster/status`.
pub async fn status(State(app): State<AppState>) -> Json<ClusterStatus> {
    let mut views = tokio::task::JoinSet::new();
    for shard in 0..app.shards.shard_count() {
        let app = app.clone();
        views.spawn(async move { shard_from_leader(&app, shard).await });
    }
    let mut shards = Vec::with_capacity(app.shards.shard_count() as usize);
    while let Some(view) = views.join_next().await {
        match view {
            Ok(view) => shards.push(view),
            Err(error) => tracing::warn!(%error, "a shard's status task failed"),
        }
    }
    shards.sort_by_key(|view| view.shard);
    Json(ClusterStatus { node: app.config.node_id, nodes: nodes(&app), shards })
}

/// `GET /internal/v1/cluster/shards/{shard}` (on the shard's leader, by forwarding).
pub async fn shard(
    State(app): State<AppState>,
    ShardSegment(shard): ShardSegment,
) -> Result<Json<ShardView>, ApiError> {
    existing(&app, shard)?;
    local_view(&app, shard).map(Json).ok_or(ApiError::NotFound)
}

/// `POST /internal/v1/cluster/shards/{shard}/leader` (on the shard's leader).
pub async fn transfer(
    State(app): State<AppState>,
    ctx: RequestContext,
    ShardSegment(shard): ShardSegment,
    body: Bytes,
) -> Result<Json<ShardView>, ApiError> {
    let result = transfer_to(&app, shard, &body).await;
    let outcome = match &result {
        Ok((to, leader)) => format!("shard {shard}: leadership to node {to}, now led by node {leader}"),
        Err(error) => format!("shard {shard}: refused: {error}"),
    };
    audit_refusals::record_cluster_action(&app, &ctx, AuditAction::LeaderTransfer, outcome).await;
    result?;
    local_view(&app, shard).map(Json).ok_or(ApiError::NotFound)
}

async fn transfer_to(app: &App, shard: u32, body: &[u8]) -> Result<(u64, u64), ApiError> {
    existing(app, shard)?;
    let request: LeaderTransfer = json_object(body, "leader transfer")?;
    // The followers' lease, then the target's own election.
    let timeout = Duration::from_millis(2 * app.config.election_timeout_ms.1) + Duration::from_secs(2);
    match app.shards.transfer_leadership(shard, request.to, timeout).await {
        Ok(leader) => Ok((request.to, leader)),
        Err(raft::Error::BadRequest(why)) => Err(ApiError::InvalidBody(why)),
        Err(error) => {
            tracing::warn!(shard, to = request.to, %error, "leader transfer failed");
            Err(ApiError::Unavailable { reason: "the leader transfer did not complete", retry_after_secs: 1 })
        }
    }
}

fn existing(app: &App, shard: u32) -> Result<(), ApiError> {
    let count = app.shards.shard_count();
    if shard < count {
        Ok(())
    } else {
        Err(ApiError::InvalidBody(format!("shard {shard} does not exist (shards 0 to {})", count - 1)))
    }
}

/// The view of `shard` by its leader: this node's when it leads, else asked of the
/// leader over the peer listener; this node's own (with the reason) when that fails.
async fn shard_from_leader(app: &App, shard: u32) -> ShardView {
    if (app.shards.is_leader(shard) || app.shards.cluster().nodes.len() <= 1)
        && let Some(view) = local_view(app, shard)
    {
        return view;
    }
    let error = match fetch_view(app, shard).await {
        Ok(view) => return view,
        Err(error) => error,
    };
    let mut view = local_view(app, shard).unwrap_or(ShardView { shard, ..ShardView::default() });
    view.error = Some(error);
    view
}

async fn fetch_view(app: &App, shard: u32) -> Result<ShardView, String> {
    let peer_addr = target_node(app, shard, 0).map_err(|e| e.to_string())?;
    let path = wire::paths::cluster_shard_path(shard);
    let url = format!("{}://{peer_addr}{FORWARD_PREFIX}{path}", app.peer_scheme);
    let answer = app
        .peer_client
        .get(&url)
        .header(FORWARD_HOPS, "1")
        .timeout(SHARD_VIEW_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{peer_addr}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("{peer_addr} answered {}", answer.status()));
    }
    let body = answer.bytes().await.map_err(|e| format!("{peer_addr}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("{peer_addr}: {e}"))
}

/// `shard` as this node sees it, if it hosts the shard.
fn local_view(app: &App, shard: u32) -> Option<ShardView> {
    let metrics = app.shards.metrics(shard)?;
    let membership = metrics.membership_config.membership();
    let last_log_index = metrics.last_log_index.unwrap_or(0);
    let followers = metrics
        .replication
        .iter()
        .flatten()
        .filter(|(node, _)| **node != metrics.id)
        .map(|(node, matched)| {
            let matched_index = matched.map_or(0, |id| id.index);
            FollowerView { node: *node, matched_index, lag_entries: last_log_index.saturating_sub(matched_index) }
        })
        .collect();
    let role = match metrics.state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Follower | ServerState::Shutdown => "follower",
    };
    Some(ShardView {
        shard,
        seen_from: metrics.id,
        role: role.to_owned(),
        leader: metrics.current_leader,
        term: metrics.current_term,
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        last_log_index,
        applied_index: metrics.last_applied.map_or(0, |id| id.index),
        snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
        purged_index: metrics.purged.map_or(0, |id| id.index),
        followers,
        error: None,
    })
}

/// The configured nodes, and any other node the hosted shards' memberships name
/// (a node joined after this node's configuration was written).
fn nodes(app: &App) -> Vec<NodeView> {
    let mut nodes: BTreeMap<u64, NodeView> = app
        .shards
        .cluster()
        .nodes
        .iter()
        .map(|n| (n.id, NodeView { id: n.id, region: n.region.clone(), peer_addr: n.peer_addr.clone() }))
        .collect();
    for shard in app.shards.hosted_shards() {
        let Some(metrics) = app.shards.metrics(shard) else { continue };
        for (id, node) in metrics.membership_config.membership().nodes() {
            nodes.entry(*id).or_insert_with(|| NodeView {
                id: *id,
                region: node.region.clone(),
                peer_addr: node.peer_addr.clone(),
            });
        }
    }
    nodes.into_values().collect()
}
