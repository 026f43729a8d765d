//! The PSP pull endpoints (SPEC.md §2.1): `GET …/stream/start`, `GET …/stream/{token}`
//! and `DELETE …/stream/{token}`. HTTP only — extract the path and the request
//! context, negotiate the representation, call `PullService`, render.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::api::ApiError;
use crate::api::negotiate::ReadPrefs;
use crate::api::path::{CursorSegments, IspbSegment};
use crate::api::reply::{closed_response, read_response};
use crate::app::AppState;
use crate::context::RequestContext;

/// `GET /api/v1/out/{ispb}/stream/start`: opens a stream and performs its first read.
pub async fn start(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let prefs = ReadPrefs::from_headers(&headers)?;
    let read = app.pull.open(&ctx, ispb, prefs.size()).await?;
    read_response(&read, prefs)
}

/// `GET /api/v1/out/{ispb}/stream/{token}`: confirms the outstanding batch and reads
/// the next one; with the previous token, repeats the outstanding batch.
pub async fn next(
    State(app): State<AppState>,
    ctx: RequestContext,
    CursorSegments { ispb, token }: CursorSegments,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let prefs = ReadPrefs::from_headers(&headers)?;
    let read = app.pull.next(&ctx, ispb, &token, prefs.size()).await?;
    read_response(&read, prefs)
}

/// `DELETE /api/v1/out/{ispb}/stream/{token}`: closes the stream; the current token
/// confirms its batch, the previous one returns it for redelivery.
pub async fn close(
    State(app): State<AppState>,
    ctx: RequestContext,
    CursorSegments { ispb, token }: CursorSegments,
) -> Result<Response, ApiError> {
    let slots = app.pull.close(&ctx, ispb, &token).await?;
    closed_response(slots)
}
