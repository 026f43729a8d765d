//! `producer_body`: splitting any body under any `Content-Type` never panics, yields
//! between one and the allowed number of messages, and every message body is cut
//! from the request body (a single message is the whole body).
//!
//! Input layout: byte 0 is the `Content-Type` length `n`, bytes 1..=n the
//! `Content-Type`, the rest the body.

use bytes::Bytes;

use crate::producer_body::split;

/// Most messages a fuzz input may split into (the producer limit).
const MAX_MESSAGES: usize = 100;

/// Checks one fuzz input; panics when the property does not hold.
pub fn check_split(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n);
    if rest.len() < n {
        return;
    }
    let content_type = String::from_utf8_lossy(&rest[..n]);
    let body = Bytes::copy_from_slice(&rest[n..]);
    let Ok(messages) = split(&content_type, Some(b"id"), body.clone(), MAX_MESSAGES) else { return };
    assert!((1..=MAX_MESSAGES).contains(&messages.len()), "{} messages", messages.len());
    if messages.len() == 1 && messages[0].resource_id.as_deref() == Some("id") && messages[0].body == body {
        return;
    }
    let total: usize = messages.iter().map(|m| m.body.len()).sum();
    assert!(total <= body.len(), "parts hold {total} bytes of a {}-byte body", body.len());
    for message in &messages {
        let found = message.body.is_empty() || body.windows(message.body.len()).any(|w| w == &message.body[..]);
        assert!(found, "a part body is cut from the request body");
    }
}
