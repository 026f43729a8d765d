//! HTTP only: the routers of the three listeners, extractors, content negotiation,
//! rendering, and `ApiError` → status and RFC 7807 problem. Handlers read like:
//! extract → `service.call(&ctx, …).await` → render; the protocol itself lives in
//! the domain services (`pull`, `produce`).
//!
//! Every public and internal request runs under the request timeout (and, on the
//! public listener, the strict-header check); every route then runs `pipeline`, one
//! middleware for the per-request policy: `attach` (the request's context and span),
//! `authorize` (may the caller make it), and on the routes that serve a shard `shed`
//! (admitted into the in-flight count or 503), `forward::to_leader` (serve here or
//! relay to the shard leader) and, on the node that serves, `rate_limit` on public
//! routes (the ISPB's token bucket) or, for an append, `shed::admit_append` (the
//! appends served at once, or 503); then the handler; on the way out `audit_refusals`
//! (refusals of an ISPB into its audit chain) and `observe` (metrics). Route templates
//! come from `wire::paths`, peer routes from `raft`.
//!
//! Layout:
//! - `pipeline`      — the per-request policy: its stages, in order, as one middleware.
//! - `attach`        — builds each request's `RequestContext` and span.
//! - `authorize`     — client mapping (public) and roles (internal).
//! - `audit_refusals` — forbidden, unauthenticated and invalid-token events → audit.
//! - `audit`         — audit export (JSON lines) and seal-now of one ISPB's chain.
//! - `rate_limit`    — per-ISPB token buckets and the `RateLimit-*` headers.
//! - `shed`          — load shedding above `listeners.max_in_flight`.
//! - `observe`       — request counts, latency histograms, problem counts.
//! - `error`         — `ApiError`, the problem rendering, the domain-error mapping.
//! - `negotiate`     — `Accept`, `Accept-Encoding`, strict ICOM headers.
//! - `path`          — the `{ispb}`/`{token}` segments, with problem answers.
//! - `json_body`     — admin request bodies: one JSON object.
//! - `stream`        — the pull handlers.
//! - `reply`         — 200/204 pull bodies and headers, the DELETE answer.
//! - `produce`       — the producer handler.
//! - `forward`       — relaying a request to the shard leader.
//! - `peer`          — the peer listener (Raft RPCs, membership, forwarded requests).
//! - `cluster_admin` — membership changes.
//! - `cluster_status` — every shard's Raft state; leader transfer.
//! - `node_admin`    — the answering node's own admin (backup).
//! - `tenants_admin` — tenant list, show and create/update (settings, pause).
//! - `tenant_actions` — stream force-close, cursor moves, tenant deletion, replays.

pub mod attach;
mod audit;
pub mod audit_refusals;
mod authorize;
pub mod cluster_admin;
pub mod cluster_status;
mod error;
pub mod forward;
mod json_body;
pub mod negotiate;
pub mod node_admin;
mod observe;
pub mod path;
pub mod peer;
mod pipeline;
mod produce;
mod rate_limit;
mod reply;
mod shed;
mod stream;
pub mod tenant_actions;
pub mod tenants_admin;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use error::{ApiError, RenderedProblem};
use wire::paths;

use crate::app::{App, AppState};
use crate::config::DEFAULT_PROBLEM_BASE;

/// The PSP-facing router (`/api/v1/out/...`).
pub fn public_router(app: AppState) -> Router {
    Router::new()
        .route(paths::STREAM_START, get(stream::start))
        .route(paths::STREAM_NEXT, get(stream::next).delete(stream::close))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(app.clone(), pipeline::public))
        .layer(middleware::from_fn_with_state(app.clone(), public_guard))
        .with_state(app)
}

/// The internal router (producer API, cluster membership admin, metrics, health).
pub fn internal_router(app: AppState) -> Router {
    Router::new()
        .route(paths::APPEND, post(produce::append))
        .route(paths::AUDIT_EXPORT, get(audit::export))
        .route(paths::AUDIT_SEAL, post(audit::seal))
        .route(paths::CLUSTER_AUDIT_EXPORT, get(audit::export))
        .route(paths::CLUSTER_AUDIT_SEAL, post(audit::seal))
        .route(paths::TENANT, get(tenants_admin::show).put(tenants_admin::set).delete(tenant_actions::delete))
        .route(paths::TENANT_STREAM, axum::routing::delete(tenant_actions::close_stream))
        .route(paths::TENANT_CURSOR, post(tenant_actions::move_cursor))
        .route(paths::TENANT_REPLAYS, post(tenant_actions::open_replay))
        .route(paths::CLUSTER_SHARD, get(cluster_status::shard))
        .route(paths::CLUSTER_SHARD_LEADER, post(cluster_status::transfer))
        .route(paths::CLUSTER_MEMBERS, post(cluster_admin::members))
        .route(paths::NODE_BACKUP, post(node_admin::backup))
        .route(paths::CLUSTER_STATUS, get(cluster_status::status))
        .route(paths::TENANTS, get(tenants_admin::list))
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .route(paths::READYZ, get(ready))
        .route(paths::METRICS, get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(app.clone(), pipeline::internal))
        .layer(middleware::from_fn_with_state(app.clone(), internal_guard))
        .with_state(app)
}

/// The public listener's outer layer: the request timeout, the strict-header check,
/// the problem base.
async fn public_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    within_timeout(&app, async {
        if app.config.strict_headers
            && let Err(e) = negotiate::check_allowed_headers(request.headers())
        {
            return e.into_problem_response(&app.config.problem_base);
        }
        with_problem_base(&app, next.run(request).await)
    })
    .await
}

/// The internal listener's outer layer: the request timeout, the problem base.
async fn internal_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    within_timeout(&app, async { with_problem_base(&app, next.run(request).await) }).await
}

/// Answers 408 when a request (its body upload included) takes longer than
/// `listeners.request_timeout_ms`, which validation keeps above the long-poll wait.
async fn within_timeout(app: &App, handled: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(app.config.listener_limits.request_timeout, handled).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_problem_response(&app.config.problem_base),
    }
}

/// Renders an error answer with the configured problem base.
fn with_problem_base(app: &App, response: Response) -> Response {
    if app.config.problem_base == DEFAULT_PROBLEM_BASE {
        return response;
    }
    match response.extensions().get::<RenderedProblem>() {
        Some(RenderedProblem(error)) => error.clone().into_problem_response(&app.config.problem_base),
        None => response,
    }
}

/// `/metrics`: the node's metrics in the Prometheus text format.
async fn metrics(State(app): State<AppState>) -> Response {
    let body = crate::metrics::render(&app);
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// `/readyz`: storage is open, no shard group stopped after a storage failure, and
/// every shard this node is a member of has a leader.
async fn ready(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    if !app.shards.stopped_shards().is_empty() {
        Err(ApiError::Unavailable { reason: SHARDS_STOPPED, retry_after_secs: 5 })
    } else if app.shards.shards_without_leader().is_empty() {
        Ok("ready")
    } else {
        Err(ApiError::Unavailable { reason: "some shards have no leader yet", retry_after_secs: 1 })
    }
}

/// The `detail` of `/readyz` while a shard group is stopped.
const SHARDS_STOPPED: &str = "a shard stopped after a storage failure (disk full?); restart the node once it is fixed";

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
