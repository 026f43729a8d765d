//! `shed`: admits a request into the node's in-flight count (`load::Load`) or refuses
//! it with 503 `unavailable` and `Retry-After: 1` when the node already works on
//! `listeners.max_in_flight` requests. Only new work is shed — appends, stream opens,
//! admin and audit calls; the read and the close of an open stream are counted but
//! always served, so a saturated node still drains and confirms what it handed out.
//! The node's own routes (health, metrics, status) are not counted. An append is
//! also admitted into the appends it may serve at once
//! (`listeners.max_in_flight_appends`) on the node that serves it, after forwarding.

use crate::api::{ApiError, error};
use crate::app::App;
use crate::context::Route;
use crate::load::{Appending, Working};

/// Admits a request of `route`; the guard keeps it in the count until dropped.
pub fn admit(app: &App, route: Route) -> Result<Working, ApiError> {
    if matches!(route, Route::StreamNext | Route::StreamClose) {
        return Ok(app.load.enter());
    }
    app.load.admit().ok_or_else(overloaded)
}

/// Admits an append served on this node into the append count.
pub fn admit_append(app: &App) -> Result<Appending, ApiError> {
    app.load.admit_append().ok_or_else(overloaded)
}

/// The answer to work shed by either bound.
fn overloaded() -> ApiError {
    ApiError::Unavailable { reason: error::OVERLOADED, retry_after_secs: 1 }
}
