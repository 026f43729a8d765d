//! Forwarding to the shard leader (SPEC.md §5): any node answers any request. A
//! request for an ISPB whose shard this node does not lead is sent, unchanged, to
//! the leader's peer listener — its address taken from the shard's Raft membership,
//! so nodes added later are reachable — (or, when this node is not in the group, to
//! a node that is, which forwards once more), and the answer — long polls included —
//! is relayed unchanged. A hop counter stops loops: after two hops the answer is 503.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::api::path::{ispb_of, shard_of};
use crate::app::App;
use crate::context::RequestContext;
use crate::log_throttle::LogThrottle;
use wire::clock::now_ms;

/// Header carrying the number of hops a forwarded request has made.
pub const FORWARD_HOPS: HeaderName = HeaderName::from_static("pixstream-forward-hops");
/// Header carrying the request id to the node that serves a forwarded request, so
/// both nodes log the request under one id.
pub const FORWARD_REQUEST_ID: HeaderName = HeaderName::from_static("pixstream-request-id");
/// Header carrying the caller of a forwarded request, as the entry node named it
/// (it authorized the request; the serving node records the actor).
pub const FORWARD_ACTOR: HeaderName = HeaderName::from_static("pixstream-forward-actor");
/// Path prefix of forwarded requests on the peer listener.
pub const FORWARD_PREFIX: &str = "/peer/v1/forward";
/// Most hops: entry node → replica → leader.
const MAX_HOPS: u32 = 2;

/// Marks an answer relayed from another node: the node that served it counts it.
#[derive(Clone, Copy, Debug)]
pub struct Relayed;

/// Hops a request made before reaching this node (set by the peer listener).
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardHops(pub u32);

/// Where a request is served.
pub enum Served {
    /// This node serves it: the request, unchanged.
    Here(Request),
    /// Another node's answer, relayed (or the 503 of a shard with no leader to ask).
    Elsewhere(Response),
}

/// Serve locally when this node leads the shard of the request's ISPB (or the shard
/// a shard admin path names), else forward.
pub async fn to_leader(app: &App, request: Request) -> Served {
    if app.shards.cluster().nodes.len() <= 1 {
        return Served::Here(request);
    }
    let path = request.uri().path();
    let shard = match (ispb_of(path), shard_of(path)) {
        (Ok(ispb), _) => app.shards.shard_for(&ispb),
        (Err(_), Some(shard)) if shard < app.shards.shard_count() => shard,
        _ => return Served::Here(request),
    };
    if app.shards.is_leader(shard) {
        return Served::Here(request);
    }
    let hops = request.extensions().get::<ForwardHops>().copied().unwrap_or_default().0;
    let answer = match target_node(app, shard, hops) {
        Ok(peer_addr) => forward(app, &peer_addr, hops + 1, request).await.unwrap_or_else(IntoResponse::into_response),
        Err(error) => error.into_response(),
    };
    Served::Elsewhere(answer)
}

/// The peer address to send a request for `shard` to. The leader's address comes
/// from the shard's Raft membership, so nodes added after this node's config was
/// written are reachable; a node outside the group (not a replica by its config, a
/// joining node not added yet, a removed node) sends to a node it knows of the
/// group (its last membership, else the config's placement), which forwards once more.
pub(crate) fn target_node(app: &App, shard: u32, hops: u32) -> Result<String, ApiError> {
    let no_leader = ApiError::Unavailable { reason: "the shard has no reachable leader", retry_after_secs: 1 };
    if hops >= MAX_HOPS {
        return Err(no_leader);
    }
    if let Some(addr) = app.shards.leader_peer_addr(shard) {
        return Ok(addr);
    }
    if app.shards.is_member(shard) {
        // A replica that knows no leader (an election runs), or leads itself but is
        // stepping up or down: nobody better to ask.
        return Err(no_leader);
    }
    let me = app.shards.node_id();
    let from_membership = app.shards.member_peer_addrs(shard).into_iter().next();
    let from_config = || {
        app.shards
            .replicas(shard)
            .into_iter()
            .filter(|id| *id != me)
            .find_map(|id| app.shards.cluster().node(id).map(|n| n.peer_addr.clone()))
    };
    from_membership.or_else(from_config).ok_or(no_leader)
}

/// Sends the request to `peer_addr` and relays the answer.
async fn forward(app: &App, peer_addr: &str, hops: u32, request: Request) -> Result<Response, ApiError> {
    let context = request.extensions().get::<RequestContext>();
    let request_id = context.map(|ctx| ctx.request_id.clone());
    let actor = context.map(|ctx| ctx.identity.actor());
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}://{peer_addr}{FORWARD_PREFIX}{path}", app.peer_scheme);
    let mut outgoing = app.peer_client.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        outgoing = outgoing.header(FORWARD_REQUEST_ID, id);
    }
    if let Some(actor) = actor.and_then(|actor| HeaderValue::from_str(&actor).ok()) {
        outgoing = outgoing.header(FORWARD_ACTOR, actor);
    }
    let outgoing = outgoing
        .header(FORWARD_HOPS, HeaderValue::from(hops))
        .timeout(app.config.long_poll_wait + std::time::Duration::from_secs(10))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    // Waiting for the leader's answer (a long poll, often) is not work here.
    let waiting = app.load.waiting();
    let answer = outgoing.send().await;
    drop(waiting);
    let answer = answer.map_err(|error| {
        static FORWARD_FAILED: LogThrottle = LogThrottle::new();
        if let Some(occurrences) = FORWARD_FAILED.admit(now_ms(), 1_000) {
            tracing::warn!(%error, peer = peer_addr, occurrences, "forwarding to the shard leader failed (at most one line a second)");
        }
        ApiError::Unavailable { reason: "the shard leader is unreachable", retry_after_secs: 1 }
    })?;
    let mut response = Response::builder().status(answer.status()).extension(Relayed);
    for (name, value) in answer.headers() {
        if !is_hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|e| ApiError::Internal(format!("relay forwarded answer: {e}")))
}

/// Headers that belong to one connection, not to the request.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te" | "trailer" | "host"
    ) || name == FORWARD_HOPS
        || name == FORWARD_REQUEST_ID
        || name == FORWARD_ACTOR
}
