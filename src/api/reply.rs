//! Rendering what the pull service returns: one bare XML message or a
//! `multipart/mixed` batch (200), or nothing yet (204) — each with the next
//! `PI-Pull-Next` and the stream slots — optionally gzip-compressed as a whole; and
//! the empty 200 of a DELETE with the slots left.

use std::io::Write;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use storage::StoredMessage;

use wire::clock::format_utc_ms;
use wire::headers::{
    PI_PULL_NEXT, PI_RESOURCE_ID, PIX_ENQUEUED_AT, PIX_MESSAGE_TYPE, PIX_REPLAY, PIX_SEQUENCE, PIX_STREAM_SLOTS,
};
use wire::multipart::{self, Part};

use crate::api::ApiError;
use crate::api::negotiate::ReadPrefs;
use crate::pull::{Read, Slots};

/// The answer to a read: 200 with the messages, or 204 when there are none. Both
/// carry the next `PI-Pull-Next` (except the 204 ending a replay) and the stream slots.
pub fn read_response(read: &Read, prefs: ReadPrefs) -> Result<Response, ApiError> {
    let mut headers = HeaderMap::new();
    // Empty only at the end of a replay: the stream is over, nothing continues it.
    if !read.pull_next.is_empty() {
        headers.insert(PI_PULL_NEXT, header_value(&read.pull_next)?);
    }
    headers.insert(PIX_STREAM_SLOTS, slots_value(read.slots)?);
    let messages = &read.messages;
    if messages.is_empty() {
        return Ok(with_headers(StatusCode::NO_CONTENT, headers, Bytes::new()));
    }
    let body = if prefs.multipart {
        let parts = messages
            .iter()
            .map(|m| {
                let mut part_headers =
                    vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"))];
                part_headers.extend(message_headers(m, read.replay)?);
                Ok(Part { headers: part_headers, body: m.body.clone() })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let boundary = multipart::choose_boundary(&parts);
        headers.insert(header::CONTENT_TYPE, header_value(&multipart::content_type(&boundary))?);
        multipart::render(&parts, &boundary)
    } else {
        let [message] = messages.as_slice() else {
            return Err(ApiError::Internal(format!("{} messages read for a single-message answer", messages.len())));
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
        for (name, value) in message_headers(message, read.replay)? {
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

/// The answer to a DELETE: 200, empty, with the stream slots after the close (and,
/// the stream being gone, no `PI-Pull-Next`).
pub fn closed_response(slots: Slots) -> Result<Response, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(PIX_STREAM_SLOTS, slots_value(slots)?);
    Ok(with_headers(StatusCode::OK, headers, Bytes::new()))
}

fn slots_value(slots: Slots) -> Result<HeaderValue, ApiError> {
    header_value(&format!("{}/{}", slots.open, slots.limit))
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
