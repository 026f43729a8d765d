//! One puller: a PSP "thread" of one ISPB. It opens a stream with `stream/start`,
//! follows every `PI-Pull-Next` at once with `Accept: multipart/mixed` (or, with
//! `--single`, `application/xml`: one bare message per answer) until the run stops,
//! and closes with a DELETE of its current token (which confirms its last
//! batch; if a request was abandoned in flight, the token is the previous one and the
//! batch goes back for redelivery — correct either way). Errors are counted and
//! backed off: 409 and 5xx retry the same token, transport failures too (a repeat of
//! the previous token returns the same batch), 410 and 400 open a new stream.
//!
//! Each puller has its own HTTP/1.1 connection (`connection`), or, with `--http2` or
//! `--gzip`, shares a `reqwest` pool.
//!
//! Answers are scanned in place: the boundary from `Content-Type`, then each part's
//! `PI-ResourceId` and `Pix-Sequence` as slices of the body — no per-message
//! allocation; the buffers a puller needs are reused across requests.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use memchr::memmem;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use wire::headers::{PI_PULL_NEXT, PI_RESOURCE_ID, PIX_SEQUENCE};
use wire::paths::stream_start_path;

use crate::answers;
use crate::connection::Connection;
use crate::ledger::Delivered;
use crate::metrics::{PullSample, Role};
use crate::shared::Shared;
use crate::shared::{jitter, transport_error_kind};

const MULTIPART: HeaderValue = HeaderValue::from_static("multipart/mixed");
const SINGLE_XML: HeaderValue = HeaderValue::from_static("application/xml");
/// Pullers started together, and the pause between such waves.
const RAMP_WAVE: usize = 200;
const RAMP_STEP: Duration = Duration::from_millis(10);

/// One message located in an answer body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRef {
    pub seq: u64,
    /// Byte range of its `PI-ResourceId` value in the body.
    pub id: Range<usize>,
}

/// What came back for one request.
struct Answer {
    status: StatusCode,
    next: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
    /// `PI-ResourceId` and `Pix-Sequence` of a bare (non-multipart) answer.
    single: Option<(HeaderValue, HeaderValue)>,
    retry_after: Option<u64>,
    body: Bytes,
}

/// How a puller reaches the node.
pub(crate) enum Transport {
    /// Its own HTTP/1.1 connection.
    Own(Connection),
    /// A shared `reqwest` pool (`--http2`, `--gzip`).
    Pooled(reqwest::Client),
}

impl Transport {
    /// Sends `method url` with `headers`; the whole answer, or the kind of failure.
    async fn exchange(
        &mut self,
        shared: &Shared,
        method: Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, HeaderValue)],
    ) -> Result<(StatusCode, HeaderMap, Bytes), &'static str> {
        match self {
            Transport::Own(connection) => {
                let path = url.strip_prefix(shared.public_base.as_str()).unwrap_or(url);
                let answer = connection.exchange(method, path, headers).await.map_err(|e| e.kind())?;
                Ok((answer.status, answer.headers, answer.body))
            }
            Transport::Pooled(client) => {
                let mut request = client.request(method, url);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let response = request.send().await.map_err(|e| transport_error_kind(&e))?;
                let (status, headers) = (response.status(), response.headers().clone());
                let body = response.bytes().await.map_err(|e| transport_error_kind(&e))?;
                Ok((status, headers, body))
            }
        }
    }
}

/// Runs puller `stream` of ISPB number `ispb` until the run stops.
pub(crate) async fn run(shared: Arc<Shared>, mut transport: Transport, ispb: usize, stream: usize) {
    let task = ispb * shared.args.streams + stream;
    let start_url = format!("{}{}", shared.public_base, stream_start_path(&shared.ispbs[ispb]));
    let mut url = start_url.clone();
    let mut open = false;
    let mut parts: Vec<PartRef> = Vec::with_capacity(16);
    let mut needle: Vec<u8> = Vec::with_capacity(96);
    let mut e2e: Vec<u64> = Vec::with_capacity(16);
    let mut backoff = Duration::from_millis(50);
    let stop = shared.stop_pulling.clone();
    shared.ledger.restart_stream(ispb, stream);
    // Thousands of pullers connecting at once overflow accept backlogs (tokio listens
    // with 1024): open in waves of 200 every 10 ms.
    pause(&stop, RAMP_STEP * (task / RAMP_WAVE) as u32).await;
    while !stop.is_cancelled() {
        let method = if open { "GET" } else { "START" };
        // The request confirms the batch we hold.
        shared.ledger.release(ispb, stream);
        let sent_us = shared.now_us();
        let exchange = exchange(&shared, &mut transport, &url, if shared.args.single { SINGLE_XML } else { MULTIPART });
        let answer = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            answer = exchange => answer,
        };
        let done_us = shared.now_us();
        let measured = shared.measuring(done_us);
        let answer = match answer {
            Ok(answer) => answer,
            Err(kind) => {
                shared.metrics.answer(task, Role::Puller, &answers::failed(kind), measured);
                shared.metrics.error(task, &format!("{method} {kind}"));
                shared.ledger.note_lost_response(ispb);
                pause(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let label = answers::label(answer.status, &answer.body);
        shared.metrics.answer(task, Role::Puller, &label, measured);
        match answer.status {
            StatusCode::OK | StatusCode::NO_CONTENT => {
                let Some(next) = answer.next.as_ref().and_then(|v| v.to_str().ok()) else {
                    shared.ledger.note_malformed(ispb, "answer without PI-Pull-Next");
                    shared.metrics.error(task, &format!("{method} {} without PI-Pull-Next", answer.status.as_u16()));
                    restart(&shared, ispb, stream, &mut open, &mut url, &start_url);
                    continue;
                };
                backoff = Duration::from_millis(50);
                url.clear();
                url.push_str(&shared.public_base);
                url.push_str(next);
                open = true;
                if answer.status == StatusCode::NO_CONTENT {
                    let sample = PullSample {
                        latency_us: done_us - sent_us,
                        first: 0,
                        redelivered: 0,
                        with_messages: false,
                        ready: false,
                        end_to_end_us: &[],
                    };
                    shared.metrics.pull(task, &sample, measured);
                    continue;
                }
                if let Err(what) = locate(&answer, &mut needle, &mut parts) {
                    // What this answer handed out is unknown; following the cursor
                    // would confirm it unseen. Count it and carry on.
                    shared.ledger.note_malformed(ispb, what);
                    shared.metrics.error(task, &format!("{method} 200 malformed"));
                    continue;
                }
                let batch = to_delivered(&answer, &parts);
                e2e.clear();
                let outcome = shared.ledger.deliver(ispb, stream, batch.as_slice(), sent_us, done_us, &mut e2e);
                let sample = PullSample {
                    latency_us: done_us - sent_us,
                    first: outcome.first,
                    redelivered: outcome.redelivered,
                    with_messages: true,
                    ready: outcome.ready,
                    end_to_end_us: &e2e,
                };
                shared.metrics.pull(task, &sample, measured);
            }
            status => {
                shared.metrics.error(task, &format!("{method} {label}"));
                let wait = answer.retry_after.map(Duration::from_secs);
                match status {
                    // Someone else (a lost request of ours) is advancing: retry.
                    StatusCode::CONFLICT => pause(&stop, Duration::from_millis(50)).await,
                    // The stream is gone or the token refused: open a new stream.
                    StatusCode::GONE | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
                        restart(&shared, ispb, stream, &mut open, &mut url, &start_url);
                    }
                    StatusCode::TOO_MANY_REQUESTS => pause(&stop, wait.unwrap_or(Duration::from_secs(1))).await,
                    s if s.is_server_error() => {
                        pause(&stop, wait.unwrap_or(backoff).min(Duration::from_secs(2))).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    _ => {
                        pause(&stop, Duration::from_secs(1)).await;
                        restart(&shared, ispb, stream, &mut open, &mut url, &start_url);
                    }
                }
            }
        }
    }
    if open {
        close(&shared, &mut transport, task, ispb, stream, &url).await;
    }
}

/// One GET: status, the headers we need, the whole body.
async fn exchange(
    shared: &Shared,
    transport: &mut Transport,
    url: &str,
    accept: HeaderValue,
) -> Result<Answer, &'static str> {
    let (status, headers, body) = transport.exchange(shared, Method::GET, url, &[(ACCEPT, accept)]).await?;
    let next = headers.get(PI_PULL_NEXT).cloned();
    let content_type = headers.get(CONTENT_TYPE).cloned();
    let is_multipart = content_type.as_ref().is_some_and(|v| starts_with_ignore_case(v.as_bytes(), b"multipart/"));
    let single = if status == StatusCode::OK && !is_multipart {
        headers.get(PI_RESOURCE_ID).cloned().zip(headers.get(PIX_SEQUENCE).cloned())
    } else {
        None
    };
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse().ok());
    Ok(Answer { status, next, content_type, single, retry_after, body })
}

/// Finds the messages of a 200 answer: the parts of a multipart body, or the one bare
/// message described by the response headers.
fn locate(answer: &Answer, needle: &mut Vec<u8>, parts: &mut Vec<PartRef>) -> Result<(), &'static str> {
    parts.clear();
    let content_type = answer.content_type.as_ref().ok_or("200 without Content-Type")?.as_bytes();
    if let Some(boundary) = boundary_of(content_type) {
        scan_multipart(&answer.body, boundary, needle, parts)?;
    } else {
        let (_, seq) = answer.single.as_ref().ok_or("bare answer without PI-ResourceId or Pix-Sequence")?;
        let seq = parse_seq(seq.as_bytes()).ok_or("Pix-Sequence is not a number")?;
        parts.push(PartRef { seq, id: 0..0 });
    }
    if parts.is_empty() {
        return Err("200 without messages");
    }
    Ok(())
}

/// The ledger's view of located messages (ids borrowed from the body or headers).
fn to_delivered<'a>(answer: &'a Answer, parts: &[PartRef]) -> smallvec_like::Batch<'a> {
    let mut batch = smallvec_like::Batch::new();
    match &answer.single {
        Some((id, _)) => batch.push(Delivered { seq: parts[0].seq, id: id.as_bytes() }),
        None => {
            for part in parts {
                batch.push(Delivered { seq: part.seq, id: &answer.body[part.id.clone()] });
            }
        }
    }
    batch
}

/// A fixed-capacity batch on the stack for the usual ≤ 16 messages, spilling to the
/// heap beyond.
mod smallvec_like {
    use crate::ledger::Delivered;

    const INLINE: usize = 16;

    pub struct Batch<'a> {
        inline: [Delivered<'a>; INLINE],
        len: usize,
        spill: Vec<Delivered<'a>>,
    }

    impl<'a> Batch<'a> {
        pub fn new() -> Batch<'a> {
            Batch { inline: [Delivered { seq: 0, id: &[] }; INLINE], len: 0, spill: Vec::new() }
        }

        pub fn push(&mut self, item: Delivered<'a>) {
            if self.spill.is_empty() && self.len < INLINE {
                self.inline[self.len] = item;
                self.len += 1;
            } else {
                if self.spill.is_empty() {
                    self.spill.extend_from_slice(&self.inline[..self.len]);
                }
                self.spill.push(item);
            }
        }

        pub fn as_slice(&self) -> &[Delivered<'a>] {
            if self.spill.is_empty() { &self.inline[..self.len] } else { &self.spill }
        }
    }
}

/// Back to `stream/start` with a fresh stream.
fn restart(shared: &Shared, ispb: usize, stream: usize, open: &mut bool, url: &mut String, start_url: &str) {
    *open = false;
    url.clear();
    url.push_str(start_url);
    shared.ledger.restart_stream(ispb, stream);
}

/// Sleeps `how_long` (± jitter) unless the run stops first.
async fn pause(stop: &tokio_util::sync::CancellationToken, how_long: Duration) {
    tokio::select! {
        () = tokio::time::sleep(jitter(how_long)) => {}
        () = stop.cancelled() => {}
    }
}

/// DELETE of the current token: confirms the last batch and frees the slot.
async fn close(shared: &Shared, transport: &mut Transport, task: usize, ispb: usize, stream: usize, url: &str) {
    shared.ledger.release(ispb, stream);
    let answer = transport.exchange(shared, Method::DELETE, url, &[]).await.map(|(status, _, body)| (status, body));
    let measured = shared.measuring(shared.now_us());
    match answer {
        Ok((status, body)) => {
            let label = answers::label(status, &body);
            shared.metrics.answer(task, Role::Puller, &label, measured);
            // 410: already closed (e.g. expired); clients treat it as success, but it
            // is worth seeing.
            if status != StatusCode::OK {
                shared.metrics.error(task, &format!("DELETE {label}"));
            }
        }
        Err(kind) => {
            shared.metrics.answer(task, Role::Puller, &answers::failed(kind), measured);
            shared.metrics.error(task, &format!("DELETE {kind}"));
        }
    }
}

/// The `boundary` parameter of a `multipart/mixed` Content-Type, quoted or not.
pub fn boundary_of(content_type: &[u8]) -> Option<&[u8]> {
    if !starts_with_ignore_case(content_type, b"multipart/mixed") {
        return None;
    }
    let mut rest = &content_type[b"multipart/mixed".len()..];
    while let Some(semicolon) = memchr::memchr(b';', rest) {
        rest = trim_start(&rest[semicolon + 1..]);
        if starts_with_ignore_case(rest, b"boundary=") {
            let value = &rest[b"boundary=".len()..];
            let boundary = match value.strip_prefix(b"\"") {
                Some(quoted) => &quoted[..memchr::memchr(b'"', quoted)?],
                None => trim_end(&value[..memchr::memchr(b';', value).unwrap_or(value.len())]),
            };
            return (!boundary.is_empty() && boundary.len() <= 70).then_some(boundary);
        }
    }
    None
}

/// Locates every part of a `multipart/mixed` body delimited by `boundary`: its
/// `Pix-Sequence` and the range of its `PI-ResourceId`. `needle` is scratch space.
pub fn scan_multipart(
    body: &[u8],
    boundary: &[u8],
    needle: &mut Vec<u8>,
    parts: &mut Vec<PartRef>,
) -> Result<(), &'static str> {
    needle.clear();
    needle.extend_from_slice(b"\r\n--");
    needle.extend_from_slice(boundary);
    let delimiter = &needle[2..];
    // The first delimiter: at the very start, or after a preamble line.
    let mut at = if body.starts_with(delimiter) {
        delimiter.len()
    } else {
        memmem::find(body, needle).ok_or("no opening delimiter")? + needle.len()
    };
    let finder = memmem::Finder::new(needle.as_slice());
    loop {
        match body.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            Some(b"--") if parts.is_empty() => return Err("multipart body without parts"),
            Some(b"--") => return Ok(()),
            _ => return Err("delimiter line not ended by CRLF"),
        }
        let headers_end = at + memmem::find(&body[at..], b"\r\n\r\n").ok_or("part headers not ended")?;
        let (mut seq, mut id) = (None, None);
        for line in body[at..headers_end].split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = memchr::memchr(b':', line) else { continue };
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"pix-sequence") {
                seq = parse_seq(value);
            } else if name.eq_ignore_ascii_case(b"pi-resourceid") {
                let start = value.len() - trim_start(value).len();
                let trimmed = trim_end(trim_start(value));
                let offset = value.as_ptr() as usize - body.as_ptr() as usize + start;
                id = Some(offset..offset + trimmed.len());
            }
        }
        let seq = seq.ok_or("part without a numeric Pix-Sequence")?;
        let id = id.filter(|r| !r.is_empty()).ok_or("part without PI-ResourceId")?;
        parts.push(PartRef { seq, id });
        let content_from = headers_end + 4;
        let end = content_from + finder.find(&body[content_from..]).ok_or("no closing delimiter")?;
        at = end + needle.len();
    }
}

fn parse_seq(text: &[u8]) -> Option<u64> {
    let text = trim_end(trim_start(text));
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn trim_start(text: &[u8]) -> &[u8] {
    let skip = text.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &text[skip..]
}

fn trim_end(text: &[u8]) -> &[u8] {
    let keep = text.len() - text.iter().rev().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &text[..keep]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, header};
    use wire::multipart::{Part, choose_boundary, content_type, render};

    fn rendered(messages: &[(u64, &str, &str)]) -> (String, Bytes) {
        let parts: Vec<Part> = messages
            .iter()
            .map(|(seq, id, body)| Part {
                headers: vec![
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8")),
                    (HeaderName::from_static("pi-resourceid"), HeaderValue::from_str(id).expect("ascii")),
                    (HeaderName::from_static("pix-sequence"), HeaderValue::from(*seq)),
                    (HeaderName::from_static("pix-message-type"), HeaderValue::from_static("pacs.008.spi.1.14")),
                ],
                body: Bytes::from(body.to_string()),
            })
            .collect();
        let boundary = choose_boundary(&parts);
        (content_type(&boundary), render(&parts, &boundary))
    }

    #[test]
    fn scans_what_the_server_renders() {
        let tricky = "<Envelope>--\r\n\r\n--pixstream-\r\nPix-Sequence: 99\r\n</Envelope>";
        let messages = [(7, "AAAA+/BBBBccccDDDDeeeeFFFFgggg12", "<Envelope/>"), (8, "id-2", tricky), (12, "id-3", "")];
        let (content_type, body) = rendered(&messages);
        let boundary = boundary_of(content_type.as_bytes()).expect("boundary");
        let (mut needle, mut parts) = (Vec::new(), Vec::new());
        scan_multipart(&body, boundary, &mut needle, &mut parts).expect("scans");
        let found: Vec<(u64, &[u8])> = parts.iter().map(|p| (p.seq, &body[p.id.clone()])).collect();
        let expected: Vec<(u64, &[u8])> = messages.iter().map(|(s, i, _)| (*s, i.as_bytes())).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn boundaries_quoted_or_not() {
        assert_eq!(boundary_of(b"multipart/mixed; boundary=\"abc def\""), Some(&b"abc def"[..]));
        assert_eq!(boundary_of(b"Multipart/Mixed;charset=x; Boundary=abc ;x=y"), Some(&b"abc"[..]));
        assert_eq!(boundary_of(b"application/xml; charset=utf-8"), None);
        assert_eq!(boundary_of(b"multipart/mixed"), None);
        assert_eq!(boundary_of(b"multipart/mixed; boundary=\"unterminated"), None);
    }

    #[test]
    fn broken_bodies_are_refused() {
        let (mut needle, mut parts) = (Vec::new(), Vec::new());
        let cases: &[(&[u8], &str)] = &[
            (b"nothing here", "no opening delimiter"),
            (b"--b--\r\n", "multipart body without parts"),
            (b"--b\r\nPix-Sequence: 1\r\nPI-ResourceId: x\r\n\r\nbody", "no closing delimiter"),
            (b"--b\r\nPI-ResourceId: x\r\n\r\nbody\r\n--b--", "part without a numeric Pix-Sequence"),
            (b"--b\r\nPix-Sequence: 1\r\n\r\nbody\r\n--b--", "part without PI-ResourceId"),
            (
                b"--b\r\nPix-Sequence: x1\r\nPI-ResourceId: x\r\n\r\nbody\r\n--b--",
                "part without a numeric Pix-Sequence",
            ),
        ];
        for (body, reason) in cases {
            parts.clear();
            assert_eq!(
                scan_multipart(body, b"b", &mut needle, &mut parts),
                Err(*reason),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        parts.clear();
        let ok = b"preamble\r\n--b\r\npix-sequence:  3 \r\npi-resourceid:\tid \r\n\r\nx\r\n--b--\r\n";
        scan_multipart(ok, b"b", &mut needle, &mut parts).expect("scans");
        let at = memmem::find(ok, b"\tid ").expect("present") + 1;
        assert_eq!(parts, vec![PartRef { seq: 3, id: at..at + 2 }]);
    }

    #[test]
    fn seqs_parse_strictly() {
        assert_eq!(parse_seq(b" 42 "), Some(42));
        assert_eq!(parse_seq(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_seq(b"18446744073709551616"), None);
        assert_eq!(parse_seq(b""), None);
        assert_eq!(parse_seq(b"-1"), None);
    }

    #[test]
    fn batches_spill_beyond_the_inline_capacity() {
        let mut batch = smallvec_like::Batch::new();
        for seq in 0..40 {
            batch.push(Delivered { seq, id: b"x" });
        }
        assert_eq!(batch.as_slice().len(), 40);
        assert_eq!(batch.as_slice()[39].seq, 39);
        assert_eq!(batch.as_slice()[3].seq, 3);
    }
}
