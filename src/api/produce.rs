//! The producer endpoint (SPEC.md §3): `POST /internal/v1/out/{ispb}/msgs` with one
//! XML message or a `multipart/mixed` batch. HTTP only — check the media type, read
//! the bounded body, split it into messages, call `AppendService`, answer 201 (200
//! when every message was a duplicate) with the JSON outcomes.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use storage::AppendOutcome;
use wire::headers::PI_RESOURCE_ID;
use wire::producer_body::{self, ProducerBodyError};

use crate::api::ApiError;
use crate::api::path::IspbSegment;
use crate::app::AppState;
use crate::context::RequestContext;
use crate::produce::Incoming;

#[derive(Serialize)]
struct AppendReply {
    messages: Vec<AppendedMessage>,
}

#[derive(Serialize)]
struct AppendedMessage {
    seq: u64,
    resource_id: String,
    duplicate: bool,
}

/// `POST /internal/v1/out/{ispb}/msgs`.
pub async fn append(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::UnsupportedMediaType("Content-Type is required".into()))?
        .to_owned();
    let limit = app.config.max_request_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("request body over {limit} bytes")))?;
    let incoming = split_messages(&content_type, &headers, body, app.config.max_messages_per_request)?;
    let outcomes = app.append.append(&ctx, ispb, incoming).await?;
    Ok(reply(outcomes))
}

/// Splits the body into messages according to its `Content-Type`.
fn split_messages(
    content_type: &str,
    headers: &HeaderMap,
    body: Bytes,
    max_messages: usize,
) -> Result<Vec<Incoming>, ApiError> {
    let resource_id = headers.get(PI_RESOURCE_ID).map(|v| v.as_bytes());
    let messages = producer_body::split(content_type, resource_id, body, max_messages).map_err(|e| match e {
        ProducerBodyError::UnsupportedMediaType(text) => ApiError::UnsupportedMediaType(text),
        ProducerBodyError::InvalidBody(text) => ApiError::InvalidBody(text),
    })?;
    Ok(messages.into_iter().map(|m| Incoming { body: m.body, resource_id: m.resource_id }).collect())
}

fn reply(outcomes: Vec<AppendOutcome>) -> Response {
    let all_duplicates = outcomes.iter().all(|o| o.duplicate);
    let status = if all_duplicates { StatusCode::OK } else { StatusCode::CREATED };
    let messages = outcomes
        .into_iter()
        .map(|o| AppendedMessage { seq: o.seq, resource_id: o.resource_id, duplicate: o.duplicate })
        .collect();
    (status, axum::Json(AppendReply { messages })).into_response()
}
