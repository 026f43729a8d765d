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
use wire::multipart;

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
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/xml" | "text/xml" => {
            let resource_id = headers.get(PI_RESOURCE_ID).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            Ok(vec![Incoming { body, resource_id }])
        }
        "multipart/mixed" => {
            let boundary = multipart::boundary_from_content_type(content_type)
                .ok_or_else(|| ApiError::InvalidBody("multipart/mixed without a usable boundary".into()))?;
            let parts =
                multipart::parse(&body, &boundary, max_messages).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            parts
                .into_iter()
                .enumerate()
                .map(|(index, part)| {
                    let part_type = part.headers.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.as_str());
                    if let Some(t) = part_type {
                        let t = t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                        if t != "application/xml" && t != "text/xml" {
                            return Err(ApiError::UnsupportedMediaType(format!(
                                "part {} has Content-Type {t}",
                                index + 1
                            )));
                        }
                    }
                    let resource_id = part.headers.iter().find(|(n, _)| n == "pi-resourceid").map(|(_, v)| v.clone());
                    Ok(Incoming { body: part.body, resource_id })
                })
                .collect()
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "{other} is not accepted; send application/xml or multipart/mixed"
        ))),
    }
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
