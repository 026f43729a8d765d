//! HTTP routing of the three listeners: the public PSP pull API, the internal
//! (producer) API and the peer API (Raft RPCs, forwarded requests), with RFC 7807
//! answers for unknown routes and methods.
//!
//! Modules: `negotiate` (Accept, Accept-Encoding, strict headers), `path` (the
//! `{ispb}`/`{token}` segments, with problem answers), `stream` (pull
//! handlers and the long poll), `reply` (200/204 bodies and headers), `produce`
//! (producer appends), `forward` (to the shard leader), `peer` (the peer listener),
//! `cluster_admin` (membership changes).

pub mod cluster_admin;
pub mod forward;
pub mod negotiate;
pub mod path;
pub mod peer;
pub mod produce;
pub mod reply;
pub mod stream;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::error::{ApiError, RenderedProblem};

/// The PSP-facing router (`/api/v1/out/...`).
pub fn public_router(app: AppState) -> Router {
    Router::new()
        .route("/api/v1/out/{ispb}/stream/start", get(stream::start))
        .route("/api/v1/out/{ispb}/stream/{token}", get(stream::next).delete(stream::close))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(app.clone(), forward::to_leader))
        .layer(middleware::from_fn_with_state(app.clone(), public_guard))
        .with_state(app)
}

/// The internal router (producer API, cluster membership admin; metrics come later).
pub fn internal_router(app: AppState) -> Router {
    Router::new()
        .route("/internal/v1/out/{ispb}/msgs", post(produce::append))
        .route_layer(middleware::from_fn_with_state(app.clone(), forward::to_leader))
        .route(cluster_admin::MEMBERS_PATH, post(cluster_admin::members))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), problem_base))
        .with_state(app)
}

/// Strict-header check, then the problem base for every error answer.
async fn public_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if app.config.strict_headers
        && let Err(e) = negotiate::check_allowed_headers(request.headers())
    {
        return e.into_problem_response(&app.config.problem_base);
    }
    problem_base(State(app), request, next).await
}

/// Renders error answers with the configured problem base.
async fn problem_base(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if app.config.problem_base == crate::error::DEFAULT_PROBLEM_BASE {
        return response;
    }
    match response.extensions().get::<RenderedProblem>() {
        Some(RenderedProblem(error)) => error.clone().into_problem_response(&app.config.problem_base),
        None => response,
    }
}

/// `/readyz`: storage is open and every shard this node is a member of has a leader.
async fn ready(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    if app.shards.shards_without_leader().is_empty() {
        Ok("ready")
    } else {
        Err(ApiError::Unavailable { reason: "some shards have no leader yet", retry_after_secs: 1 })
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
