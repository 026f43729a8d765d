//! The peer listener: Raft RPCs between the nodes of a cluster
//! (`POST /peer/v1/raft/{shard}/{append|vote|snapshot}`, bincode bodies, handled by
//! `raft::Shards::handle_peer_rpc`), membership requests sent to a shard's leader
//! (`POST /peer/v1/membership/{shard}`, bincode, `raft::Shards::handle_membership_rpc`)
//! access events another node saw (`POST /peer/v1/audit`, JSON, `api::audit_refusals`)
//! and requests forwarded from other nodes
//! (`/peer/v1/forward/...`), which are dispatched into the public or internal router
//! exactly as if they had arrived there.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use tower::ServiceExt;

use raft::{CAMPAIGN_PATH, MEMBERSHIP_PATH, PEER_RAFT_PATH};

use crate::api::ApiError;
use crate::api::attach::{ForwardedActor, ForwardedRequestId};
use crate::api::audit_refusals::{self, AUDIT_RELAY_PATH};
use crate::api::forward::{FORWARD_ACTOR, FORWARD_HOPS, FORWARD_PREFIX, FORWARD_REQUEST_ID, ForwardHops};
use crate::app::AppState;

/// Largest peer request body.
const PEER_BODY_LIMIT: usize = 64 << 20;

/// What the peer listener needs: the node, and the routers to dispatch into.
#[derive(Clone)]
struct PeerState {
    app: AppState,
    public: Router,
    internal: Router,
}

/// The peer router. `public` and `internal` are the node's own routers.
pub fn peer_router(app: AppState, public: Router, internal: Router) -> Router {
    Router::new()
        .route(&format!("{PEER_RAFT_PATH}/{{shard}}/{{kind}}"), post(raft_rpc))
        .route(&format!("{MEMBERSHIP_PATH}/{{shard}}"), post(membership))
        .route(&format!("{CAMPAIGN_PATH}/{{shard}}"), post(campaign))
        .route(&format!("{FORWARD_PREFIX}/{{*rest}}"), any(forwarded))
        .route(AUDIT_RELAY_PATH, post(audit_event))
        // Raft appends carry batches of messages (entries of up to ~4 MiB each).
        .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT))
        .with_state(PeerState { app, public, internal })
}

async fn raft_rpc(State(peer): State<PeerState>, Path((shard, kind)): Path<(u32, String)>, body: Bytes) -> Response {
    match peer.app.shards.handle_peer_rpc(shard, &kind, &body).await {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(raft::Error::BadRequest(reason)) => (StatusCode::BAD_REQUEST, reason).into_response(),
        Err(error @ raft::Error::NotMember { .. }) => (StatusCode::NOT_FOUND, error.to_string()).into_response(),
        Err(error) => {
            tracing::warn!(shard, kind, %error, "peer rpc failed");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
        }
    }
}

/// A membership change for a shard this node may lead: 200 with the bincode answer
/// (done, not the leader, or failed for now), 400 for a body that does not decode.
async fn membership(State(peer): State<PeerState>, Path(shard): Path<u32>, body: Bytes) -> Response {
    match peer.app.shards.handle_membership_rpc(shard, &body).await {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(raft::Error::BadRequest(reason)) => (StatusCode::BAD_REQUEST, reason).into_response(),
        Err(error) => {
            tracing::warn!(shard, %error, "membership request failed");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
        }
    }
}

/// The leader of a shard hands its leadership over: run for election until this
/// node wins or the time allowed passes; 200 with the bincode of the leader known.
async fn campaign(State(peer): State<PeerState>, Path(shard): Path<u32>, body: Bytes) -> Response {
    match peer.app.shards.handle_campaign_rpc(shard, &body).await {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(error @ (raft::Error::BadRequest(_) | raft::Error::Wire(_))) => {
            (StatusCode::BAD_REQUEST, error.to_string()).into_response()
        }
        Err(error) => {
            tracing::warn!(shard, %error, "campaign request failed");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
        }
    }
}

/// An access event another node saw, for a shard this node leads.
/// Like forwarded requests, taken only over peer TLS on a node that checks access.
async fn audit_event(State(peer): State<PeerState>, body: Bytes) -> Response {
    let security = &peer.app.config.security;
    if (security.checks_public_access() || security.checks_internal_access()) && security.peer_tls.is_none() {
        return ApiError::Forbidden("relayed audit events need peer TLS on a node that checks access".into())
            .into_response();
    }
    match audit_refusals::relayed(&peer.app, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

/// A request another node authorized and forwarded. Forwarded requests skip the
/// access checks, so on a node that checks access they are only taken over peer
/// TLS (where only cluster nodes can connect); a secured single node without
/// `[tls.peer]` refuses them.
async fn forwarded(State(peer): State<PeerState>, mut request: Request) -> Response {
    let security = &peer.app.config.security;
    let checks_access = security.checks_public_access() || security.checks_internal_access();
    if checks_access && security.peer_tls.is_none() {
        return ApiError::Forbidden("forwarded requests need peer TLS on a node that checks access".into())
            .into_response();
    }
    let hops = request
        .headers_mut()
        .remove(FORWARD_HOPS)
        .and_then(|v| v.to_str().ok().and_then(|t| t.parse::<u32>().ok()))
        .unwrap_or(1);
    let request_id = request.headers_mut().remove(FORWARD_REQUEST_ID).and_then(|v| v.to_str().ok().map(str::to_owned));
    let actor = request.headers_mut().remove(FORWARD_ACTOR).and_then(|v| v.to_str().ok().map(str::to_owned));
    let original = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Some(rest) = original.strip_prefix(FORWARD_PREFIX) else {
        return ApiError::NotFound.into_response();
    };
    let Ok(uri) = rest.parse::<Uri>() else {
        return ApiError::NotFound.into_response();
    };
    let router = if uri.path().starts_with("/internal/") { peer.internal } else { peer.public };
    *request.uri_mut() = uri;
    // The peer route's own match would prefix the one the dispatch makes: the route
    // is the forwarded request's alone.
    request.extensions_mut().remove::<MatchedPath>();
    request.extensions_mut().insert(ForwardHops(hops));
    if let Some(id) = request_id {
        request.extensions_mut().insert(ForwardedRequestId(id));
    }
    if let Some(actor) = actor {
        request.extensions_mut().insert(ForwardedActor(actor));
    }
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
