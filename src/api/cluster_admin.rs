//! Cluster administration on the internal listener (SPEC.md §4, §5).
//!
//! `POST /internal/v1/cluster/members` with JSON
//! `{"nodes":[{"id":1,"region":"sp1","peer_addr":"10.0.0.1:7402"},…]}` — the complete
//! desired node list, optionally with `"replication_factor"` (default: this node's
//! configured one) — places every shard on those nodes (`raft::ClusterMap`) and
//! reconciles each shard's Raft membership to its placement through the shard's
//! leader (`raft::Shards::apply_cluster`). Answers 200 with
//! `{"shards":[{"shard":0,"voters":[1,2,3]},…]}` when every shard was changed, or 503
//! with the same list plus `"failed":[{"shard":2,"error":"…"}]` naming the shards that
//! could not be changed (retrying the same call is safe: a shard already in its
//! desired membership is left alone). 400 for a body that is not such a list.
//!
//! Adding a node: start it with `serve --join`, then post the list with it. Removing
//! one: post the list without it, and stop it only after the answer is 200.
//!
//! The call demands the `operator` role. Every call — a change, a partial one, a
//! refused body — is recorded in the cluster's audit chain (`Ispb::CLUSTER`,
//! `cluster.membership`) with its caller, the nodes asked for and the result,
//! before the answer is sent.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use storage::audit::AuditAction;

use crate::api::json_body::json_object;
use crate::api::{ApiError, audit_refusals};
use crate::app::{App, AppState};
use crate::context::RequestContext;

/// Route of the membership call.
pub const MEMBERS_PATH: &str = wire::paths::CLUSTER_MEMBERS;
/// How long one shard's change may take (a new replica's catch-up included).
const SHARD_CHANGE_TIMEOUT: Duration = Duration::from_secs(90);

/// The body of `POST /internal/v1/cluster/members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersRequest {
    /// Every node that should replicate shards, with its region and peer address.
    pub nodes: Vec<raft::MemberNode>,
    /// Replicas per shard (capped at the node count); default: the node's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
}

/// One shard's voters after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMembers {
    pub shard: u32,
    pub voters: Vec<u64>,
}

/// A shard whose change failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFailure {
    pub shard: u32,
    pub error: String,
}

/// The answer of `POST /internal/v1/cluster/members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersAnswer {
    pub shards: Vec<ShardMembers>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ShardFailure>,
}

/// `POST /internal/v1/cluster/members`.
pub async fn members(State(app): State<AppState>, ctx: RequestContext, body: Bytes) -> Result<Response, ApiError> {
    let answer = change(&app, &body).await;
    let outcome = match &answer {
        Ok((status, answer, ids)) => format!(
            "nodes {ids:?}: {} ({} shards placed, failed shards {:?})",
            status.as_u16(),
            answer.shards.len(),
            answer.failed.iter().map(|f| f.shard).collect::<Vec<_>>()
        ),
        Err(error) => format!("refused: {error}"),
    };
    audit_refusals::record_cluster_action(&app, &ctx, AuditAction::ClusterMembership, outcome).await;
    let (status, answer, _) = answer?;
    Ok((status, Json(answer)).into_response())
}

/// Parses and carries out a membership call: (status, answer, node ids asked for).
async fn change(app: &App, body: &[u8]) -> Result<(StatusCode, MembersAnswer, Vec<u64>), ApiError> {
    let request: MembersRequest = json_object(body, "members request")?;
    let map = raft::ClusterMap {
        nodes: request.nodes,
        shards: app.shards.shard_count(),
        replication_factor: request.replication_factor.unwrap_or(app.config.replication_factor),
    };
    map.validate().map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let ids: Vec<u64> = map.nodes.iter().map(|n| n.id).collect();
    tracing::info!(nodes = ?ids, replication_factor = map.replication_factor, "membership change requested");
    let results = app.shards.apply_cluster(&map, SHARD_CHANGE_TIMEOUT).await.map_err(|e| {
        tracing::error!(error = %e, "membership change refused");
        ApiError::InvalidBody(e.to_string())
    })?;
    let mut answer = MembersAnswer { shards: Vec::new(), failed: Vec::new() };
    for (shard, result) in (0..).zip(results) {
        match result {
            Ok(voters) => answer.shards.push(ShardMembers { shard, voters }),
            Err(error) => {
                tracing::warn!(shard, %error, "shard membership not changed");
                answer.failed.push(ShardFailure { shard, error: error.to_string() });
            }
        }
    }
    let status = if answer.failed.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    tracing::info!(status = status.as_u16(), failed = answer.failed.len(), "membership change finished");
    Ok((status, answer, ids))
}
