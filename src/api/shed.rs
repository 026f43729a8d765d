//! `shed`: the middleware that admits a request into the node's in-flight count
//! (`load::Load`) or answers 503 `unavailable` with `Retry-After: 1` when the node
//! already works on `listeners.max_in_flight` requests. Only new work is shed —
//! appends, stream opens, admin and audit calls; the read and the close of an open
//! stream are counted but always served, so a saturated node still drains and
//! confirms what it handed out. Health routes are never shed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, error};
use crate::app::AppState;
use crate::context::{RequestContext, Route};

/// Middleware: admit or shed.
pub async fn shed(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<RequestContext>().map(|ctx| ctx.route);
    if matches!(route, Some(Route::StreamNext | Route::StreamClose)) {
        let _working = app.load.enter();
        return next.run(request).await;
    }
    let Some(_working) = app.load.admit() else {
        return ApiError::Unavailable { reason: error::OVERLOADED, retry_after_secs: 1 }.into_response();
    };
    next.run(request).await
}
