//! `shed`: the middleware that admits a request into the node's in-flight count
//! (`load::Load`) or answers 503 `unavailable` with `Retry-After: 1` when the node
//! already works on `listeners.max_in_flight` requests. Health routes are never
//! shed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, error};
use crate::app::AppState;

/// Middleware: admit or shed.
pub async fn shed(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(_working) = app.load.admit() else {
        return ApiError::Unavailable { reason: error::OVERLOADED, retry_after_secs: 1 }.into_response();
    };
    next.run(request).await
}
