//! The producer endpoint (SPEC.md §3): `POST /internal/v1/out/{ispb}/msgs` with one
//! XML message or a `multipart/mixed` batch. Every message is validated before
//! anything is proposed; a batch is all-or-nothing; the answer is sent only after
//! the append is committed.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use storage::{AppendOutcome, Command, CommandResult, NewMessage};

use crate::api::path::IspbSegment;
use crate::app::{App, AppState};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::headers::PI_RESOURCE_ID;
use crate::{multipart, xml};

/// Longest producer-supplied `PI-ResourceId`.
const MAX_RESOURCE_ID_LEN: usize = 64;

/// One message as received, before validation.
struct Incoming {
    body: Bytes,
    resource_id: Option<String>,
}

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
    IspbSegment(ispb): IspbSegment,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::UnsupportedMediaType("Content-Type is required".into()))?
        .to_owned();
    let body = axum::body::to_bytes(body, app.config.max_request_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("request body over {} bytes", app.config.max_request_bytes)))?;
    let incoming = split_messages(&app, &content_type, &headers, body)?;
    let mut messages = Vec::with_capacity(incoming.len());
    for (index, message) in incoming.into_iter().enumerate() {
        messages.push(validate(&app, &ispb, index + 1, message)?);
    }
    let command = Command::Append {
        ispb,
        now_ms: now_ms(),
        auto_create: app.config.auto_create(),
        dedupe_window_ms: app.config.dedupe_window.as_millis() as u64,
        messages,
    };
    match app.propose(command).await? {
        CommandResult::Appended(outcomes) => Ok(reply(outcomes)),
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(ApiError::Internal(format!("unexpected append result {other:?}"))),
    }
}

/// Splits the body into messages according to its `Content-Type`.
fn split_messages(app: &App, content_type: &str, headers: &HeaderMap, body: Bytes) -> Result<Vec<Incoming>, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/xml" | "text/xml" => {
            let resource_id = supplied_resource_id(headers.get(PI_RESOURCE_ID).map(|v| v.to_str()), 1)?;
            Ok(vec![Incoming { body, resource_id }])
        }
        "multipart/mixed" => {
            let boundary = multipart::boundary_from_content_type(content_type)
                .ok_or_else(|| ApiError::InvalidBody("multipart/mixed without a usable boundary".into()))?;
            let parts = multipart::parse(&body, &boundary, app.config.max_messages_per_request)
                .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
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
                    let id = part
                        .headers
                        .iter()
                        .find(|(n, _)| n == "pi-resourceid")
                        .map(|(_, v)| Ok::<_, std::convert::Infallible>(v.as_str()));
                    let resource_id = supplied_resource_id(id, index + 1)?;
                    Ok(Incoming { body: part.body, resource_id })
                })
                .collect()
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "{other} is not accepted; send application/xml or multipart/mixed"
        ))),
    }
}

/// A producer's `PI-ResourceId`, if any: 1–64 characters of Base64/URL-safe text.
fn supplied_resource_id<E>(value: Option<Result<&str, E>>, part: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || ApiError::InvalidMessage {
        part,
        reason: "PI-ResourceId must be 1-64 characters of [A-Za-z0-9+/=_-]".into(),
    };
    let text = value.map_err(|_| invalid())?.trim();
    let valid = !text.is_empty()
        && text.len() <= MAX_RESOURCE_ID_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b));
    if valid { Ok(Some(text.to_owned())) } else { Err(invalid()) }
}

/// Checks one message and prepares it for the log.
fn validate(app: &App, ispb: &storage::Ispb, part: usize, message: Incoming) -> Result<NewMessage, ApiError> {
    if message.body.len() > app.config.max_message_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "message {part} has {} bytes, the limit is {}",
            message.body.len(),
            app.config.max_message_bytes
        )));
    }
    let info = xml::validate_envelope(&message.body, ispb.as_str())
        .map_err(|reason| ApiError::InvalidMessage { part, reason })?;
    let resource_id = message.resource_id.clone().unwrap_or_else(new_resource_id);
    let dedupe_key = message.resource_id.or(info.biz_msg_idr).unwrap_or_else(|| resource_id.clone());
    Ok(NewMessage { resource_id, dedupe_key, msg_type: info.msg_def_idr, body: message.body })
}

/// A fresh `PI-ResourceId`: 24 random bytes as 32 characters of standard Base64.
pub fn new_resource_id() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
