//! What the server answers, parsed and checked independently of it: producer
//! outcomes, 200/204 pull answers (every rule of SPEC §2.2 that holds for all of
//! them: `PI-Pull-Next`, `Pix-Stream-Slots`, per-message headers, gzip, batches).

use std::io::Read;

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::multipart::parse_multipart;

/// What the producer API reported for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub resource_id: String,
    pub duplicate: bool,
}

/// Reads a producer answer: status and outcomes (empty for problems).
pub async fn appended(response: reqwest::Response) -> (StatusCode, Vec<Appended>) {
    let status = response.status();
    let text = response.text().await.expect("body");
    if !status.is_success() {
        return (status, Vec::new());
    }
    (status, parse_appended(&text))
}

/// Parses a producer 200/201 JSON answer.
pub fn parse_appended(text: &str) -> Vec<Appended> {
    let json: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("producer answer is not JSON ({e}): {text}"));
    let list = json["messages"].as_array().unwrap_or_else(|| panic!("no `messages` array: {text}"));
    list.iter()
        .map(|m| Appended {
            seq: m["seq"].as_u64().unwrap_or_else(|| panic!("seq missing: {text}")),
            resource_id: m["resource_id"].as_str().unwrap_or_else(|| panic!("resource_id missing: {text}")).to_owned(),
            duplicate: m["duplicate"].as_bool().unwrap_or_else(|| panic!("duplicate missing: {text}")),
        })
        .collect()
}

/// One delivered message with its per-message headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub seq: u64,
    pub resource_id: String,
    pub msg_type: String,
    pub enqueued_at: String,
    pub body: Vec<u8>,
}

/// A 200 or 204 pull answer, checked and parsed.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as sent (possibly gzip).
    pub wire: Vec<u8>,
    /// The body after gunzip when `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    pub gzip: bool,
    pub messages: Vec<Msg>,
    /// `PI-Pull-Next`.
    pub next: String,
    /// `Pix-Stream-Slots`.
    pub slots: String,
}

impl Pulled {
    pub fn seqs(&self) -> Vec<u64> {
        self.messages.iter().map(|m| m.seq).collect()
    }

    pub fn ids(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.resource_id.clone()).collect()
    }

    /// The token part of `PI-Pull-Next`.
    pub fn token(&self) -> &str {
        self.next.rsplit('/').next().expect("path has segments")
    }
}

/// Asserts that `response` is a 200 or 204 pull answer and parses it, checking every
/// rule of SPEC §2.2 that holds for all such answers.
pub async fn pulled(response: reqwest::Response) -> Pulled {
    let status = response.status();
    let headers = response.headers().clone();
    let wire = response.bytes().await.expect("body").to_vec();
    assert!(
        status == StatusCode::OK || status == StatusCode::NO_CONTENT,
        "expected 200 or 204, got {status}: {}",
        String::from_utf8_lossy(&wire)
    );
    let next = header(&headers, "pi-pull-next").unwrap_or_else(|| panic!("{status} without PI-Pull-Next"));
    check_pull_next(&next);
    let slots = header(&headers, "pix-stream-slots").unwrap_or_else(|| panic!("{status} without Pix-Stream-Slots"));
    check_slots(&slots);
    let gzip = header(&headers, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip { gunzip(&wire) } else { wire.clone() };
    let mut messages = Vec::new();
    if status == StatusCode::NO_CONTENT {
        assert!(body.is_empty(), "204 with a body");
    } else {
        let content_type = header(&headers, "content-type").expect("200 without Content-Type");
        if content_type.to_ascii_lowercase().starts_with("multipart/mixed") {
            messages = parse_multipart(&content_type, &body);
            assert!((1..=10).contains(&messages.len()), "a batch holds 1 to 10 messages, got {}", messages.len());
        } else {
            assert_eq!(content_type, "application/xml; charset=utf-8");
            messages.push(message_from_headers(&headers, body.clone()));
        }
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs within a batch ascend: {seqs:?}");
    }
    Pulled { status, headers, wire, body, gzip, messages, next, slots }
}

/// `PI-Pull-Next` is `/api/v1/out/{ispb}/stream/{token}` with a base64url token of at
/// most 256 characters; returns the ISPB.
pub fn check_pull_next(next: &str) -> String {
    let rest = next.strip_prefix("/api/v1/out/").unwrap_or_else(|| panic!("PI-Pull-Next is not a stream path: {next}"));
    let (ispb, token) =
        rest.split_once("/stream/").unwrap_or_else(|| panic!("PI-Pull-Next is not a stream path: {next}"));
    assert_eq!(ispb.len(), 8, "ISPB in PI-Pull-Next: {next}");
    assert!(!token.is_empty() && token.len() <= 256, "token length {} in {next}", token.len());
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "token is not base64url without padding: {token}"
    );
    assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).is_ok(), "token does not decode: {token}");
    ispb.to_owned()
}

/// `Pix-Stream-Slots` is `<open>/6` with 1 ≤ open ≤ 6 on a successful read.
pub fn check_slots(slots: &str) {
    let (open, limit) = slots.split_once('/').unwrap_or_else(|| panic!("Pix-Stream-Slots {slots:?}"));
    let open: u32 = open.parse().unwrap_or_else(|_| panic!("Pix-Stream-Slots {slots:?}"));
    let limit: u32 = limit.parse().unwrap_or_else(|_| panic!("Pix-Stream-Slots {slots:?}"));
    assert!(limit >= 1 && open <= limit, "Pix-Stream-Slots {slots:?}");
}

/// A header as text.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v: &HeaderValue| v.to_str().expect("ASCII header").to_owned())
}

fn message_from_headers(headers: &HeaderMap, body: Vec<u8>) -> Msg {
    let get = |name: &str| header(headers, name).unwrap_or_else(|| panic!("message without {name}"));
    build_msg(get("pi-resourceid"), get("pix-sequence"), get("pix-message-type"), get("pix-enqueued-at"), body)
}

pub(super) fn build_msg(resource_id: String, seq: String, msg_type: String, enqueued_at: String, body: Vec<u8>) -> Msg {
    assert!(!resource_id.is_empty(), "empty PI-ResourceId");
    let seq: u64 = seq.parse().unwrap_or_else(|_| panic!("Pix-Sequence {seq:?} is not a number"));
    assert!(seq >= 1, "seqs start at 1");
    assert!(!msg_type.is_empty(), "empty Pix-Message-Type");
    assert!(is_utc_millis(&enqueued_at), "Pix-Enqueued-At {enqueued_at:?} is not YYYY-MM-DDThh:mm:ss.sssZ");
    Msg { seq, resource_id, msg_type, enqueued_at, body }
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn is_utc_millis(text: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    text.len() == pattern.len()
        && text.bytes().zip(pattern.iter()).all(|(c, p)| if *p == b'd' { c.is_ascii_digit() } else { c == *p })
}

/// Decompresses a gzip body.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.starts_with(&[0x1f, 0x8b]), "Content-Encoding: gzip but no gzip magic");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

/// The text of the first `<tag>` element (namespace prefix ignored), e.g. `MsgDefIdr`.
pub fn element_text(xml: &str, tag: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = xml[from..].find('<') {
        let start = from + at + 1;
        let end = start + xml[start..].find('>')?;
        let name = xml[start..end].split_whitespace().next().unwrap_or_default();
        let local = name.rsplit(':').next().unwrap_or_default();
        if !name.starts_with('/') && local == tag {
            let text_end = end + 1 + xml[end + 1..].find('<')?;
            return Some(xml[end + 1..text_end].trim().to_owned());
        }
        from = end;
    }
    None
}
