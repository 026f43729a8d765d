//! Building pull responses: one bare XML message or a `multipart/mixed` batch (200),
//! or nothing yet (204) — each with the next `PI-Pull-Next` and the stream slots —
//! optionally gzip-compressed as a whole.

use std::io::Write;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use storage::{Ispb, StoredMessage, StreamId};

use crate::api::negotiate::ReadPrefs;
use crate::app::App;
use crate::clock::format_utc_ms;
use crate::error::ApiError;
use crate::headers::{
    PI_PULL_NEXT, PI_RESOURCE_ID, PIX_ENQUEUED_AT, PIX_MESSAGE_TYPE, PIX_REPLAY, PIX_SEQUENCE, PIX_STREAM_SLOTS,
};
use crate::multipart::{self, Part};
use crate::token::{StreamKind, TokenClaims, pull_next_path};

/// Where a stream stands after a read: what the next token continues from.
#[derive(Clone, Debug)]
pub struct StreamPosition {
    pub ispb: Ispb,
    pub shard: u32,
    pub stream: StreamId,
    pub generation: u64,
    pub handed_at_ms: u64,
    pub open_streams: u32,
    pub max_streams: u32,
    pub kind: StreamKind,
}

impl StreamPosition {
    /// The `PI-Pull-Next` path continuing from this position. Deterministic: the
    /// same position always yields the same token.
    pub fn pull_next(&self, app: &App) -> String {
        let token = app.keys.issue(&TokenClaims {
            ispb: *self.ispb.as_bytes(),
            shard: self.shard,
            stream: self.stream,
            generation: self.generation,
            issued_at_ms: self.handed_at_ms,
            kind: self.kind,
        });
        pull_next_path(self.ispb.as_str(), &token)
    }
}

/// The answer to a read: 200 with the messages, or 204 when there are none.
pub fn read_response(
    app: &App,
    position: &StreamPosition,
    messages: &[StoredMessage],
    prefs: ReadPrefs,
) -> Result<Response, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(PI_PULL_NEXT, header_value(&position.pull_next(app))?);
    headers.insert(PIX_STREAM_SLOTS, header_value(&format!("{}/{}", position.open_streams, position.max_streams))?);
    if messages.is_empty() {
        return Ok(with_headers(StatusCode::NO_CONTENT, headers, Bytes::new()));
    }
    let replay = position.kind == StreamKind::Replay;
    let body = if prefs.multipart {
        let parts = messages
            .iter()
            .map(|m| {
                let mut part_headers =
                    vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"))];
                part_headers.extend(message_headers(m, replay)?);
                Ok(Part { headers: part_headers, body: m.body.clone() })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let boundary = multipart::choose_boundary(&parts);
        headers.insert(header::CONTENT_TYPE, header_value(&multipart::content_type(&boundary))?);
        multipart::render(&parts, &boundary)
    } else {
        let [message] = messages else {
            // A retry that repeats a multipart batch under `Accept: application/xml`:
            // answering with one message would confirm the rest unseen.
            return Err(ApiError::NotAcceptable(format!(
                "the outstanding batch holds {} messages; repeat the request with Accept: multipart/mixed",
                messages.len()
            )));
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
        for (name, value) in message_headers(message, replay)? {
            headers.insert(name, value);
        }
        message.body.clone()
    };
    let body = if prefs.gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        gzip(&body)?
    } else {
        body
    };
    headers.insert(header::VARY, HeaderValue::from_static("accept, accept-encoding"));
    Ok(with_headers(StatusCode::OK, headers, body))
}

/// Per-message headers: id, seq, type, enqueue time (and the replay mark).
fn message_headers(
    message: &StoredMessage,
    replay: bool,
) -> Result<Vec<(axum::http::HeaderName, HeaderValue)>, ApiError> {
    let mut out = vec![
        (PI_RESOURCE_ID, header_value(&message.resource_id)?),
        (PIX_SEQUENCE, HeaderValue::from(message.seq)),
        (PIX_MESSAGE_TYPE, header_value(&message.msg_type)?),
        (PIX_ENQUEUED_AT, header_value(&format_utc_ms(message.enqueued_at_ms))?),
    ];
    if replay {
        out.push((PIX_REPLAY, HeaderValue::from_static("true")));
    }
    Ok(out)
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|_| ApiError::Internal("stored value is not a valid header".into()))
}

fn gzip(body: &[u8]) -> Result<Bytes, ApiError> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    encoder
        .write_all(body)
        .and_then(|_| encoder.finish())
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("gzip: {e}")))
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
