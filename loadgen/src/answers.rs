//! Answer classes: what each request of a run got back, as a short label — the status
//! for a success (`200`, `204`, `201`), the status and the RFC 7807 problem code for a
//! refusal (`429 rateLimited`, `429 tooManyStreams`, `503 unavailable`), `failed:
//! timeout` (or `connect`, `body`, `error`) when no answer came — and the counts of
//! those labels with the shares the report gives (served, rate limited, shed).
//!
//! The problem code is the last segment of the problem's `type` (`/api/v1/error/
//! rateLimited` → `rateLimited`), read from an `application/problem+xml` body
//! (`<type>…</type>`) or a JSON one (`"code"`, else `"type"`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde::Serialize;

/// Label of `429` answers refused by the ISPB's request rate limit.
pub const RATE_LIMITED: &str = "429 rateLimited";
/// Label of `429` answers refused because the ISPB already has all its streams open.
pub const TOO_MANY_STREAMS: &str = "429 tooManyStreams";

/// The label of an answer with `status` and `body`: a success is its status alone, a
/// refusal its status and problem code (`429 ?` when the body names none).
pub fn label(status: StatusCode, body: &[u8]) -> Cow<'static, str> {
    match status.as_u16() {
        200 => Cow::Borrowed("200"),
        201 => Cow::Borrowed("201"),
        204 => Cow::Borrowed("204"),
        code if status.is_success() => Cow::Owned(code.to_string()),
        code => Cow::Owned(format!("{code} {}", problem_code(body).unwrap_or("?"))),
    }
}

/// The label of a request that got no answer (`kind` from `transport_error_kind`).
pub fn failed(kind: &str) -> String {
    format!("failed: {kind}")
}

/// The problem code of an RFC 7807 body, XML or JSON: the last path segment of its
/// `type`, or a JSON `code`.
pub fn problem_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?.trim_start();
    if text.starts_with('{') {
        return json_code(text);
    }
    let open = text.find("<type>")? + "<type>".len();
    let close = open + text[open..].find("</type>")?;
    last_segment(text[open..close].trim())
}

fn json_code(text: &str) -> Option<&str> {
    // Borrowed strings only: a code with escapes is not a plain code anyway.
    #[derive(serde::Deserialize)]
    struct Problem<'a> {
        #[serde(borrow, default)]
        code: Option<&'a str>,
        #[serde(borrow, default, rename = "type")]
        type_uri: Option<&'a str>,
    }
    let problem: Problem<'_> = serde_json::from_str(text).ok()?;
    problem.code.filter(|c| !c.is_empty()).or_else(|| last_segment(problem.type_uri?))
}

fn last_segment(uri: &str) -> Option<&str> {
    let code = uri.rsplit(['/', '#', ':']).next()?.trim();
    (!code.is_empty()).then_some(code)
}

/// Requests counted by label.
pub type Counts = BTreeMap<String, u64>;

/// Adds one request with `label` to `counts` (no allocation for a known label).
pub fn count(counts: &mut Counts, label: &str) {
    match counts.get_mut(label) {
        Some(n) => *n += 1,
        None => {
            counts.insert(label.to_owned(), 1);
        }
    }
}

/// What one group of requests (pullers, producers, the flood) got back.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AnswerSummary {
    /// Requests sent (answered or failed).
    pub requests: u64,
    /// Answered 2xx.
    pub served: u64,
    /// Answered `429 rateLimited`.
    pub rate_limited: u64,
    /// Answered `429 tooManyStreams`.
    pub too_many_streams: u64,
    /// Answered 503 (shed by a node at `max_in_flight`, or a shard without a leader).
    pub shed: u64,
    /// `shed / requests` (0 without requests).
    pub shed_share: f64,
    /// Every label and its count.
    pub by_answer: Counts,
}

impl AnswerSummary {
    pub fn of(counts: &Counts) -> AnswerSummary {
        let sum = |keep: &dyn Fn(&str) -> bool| counts.iter().filter(|(k, _)| keep(k)).map(|(_, n)| n).sum::<u64>();
        let requests = sum(&|_| true);
        let shed = sum(&|k| k.starts_with("503"));
        AnswerSummary {
            requests,
            served: sum(&|k| k.starts_with('2')),
            rate_limited: counts.get(RATE_LIMITED).copied().unwrap_or(0),
            too_many_streams: counts.get(TOO_MANY_STREAMS).copied().unwrap_or(0),
            shed,
            shed_share: if requests == 0 { 0.0 } else { shed as f64 / requests as f64 },
            by_answer: counts.clone(),
        }
    }

    /// Both groups together.
    pub fn merged(a: &Counts, b: &Counts) -> AnswerSummary {
        let mut all = a.clone();
        for (label, n) in b {
            *all.entry(label.clone()).or_default() += n;
        }
        AnswerSummary::of(&all)
    }

    /// `200: 5, 429 rateLimited: 3` (or `none`).
    pub fn list(&self) -> String {
        if self.by_answer.is_empty() {
            return "none".to_owned();
        }
        self.by_answer.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_come_from_xml_or_json_bodies() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<problem xmlns="urn:ietf:rfc:7807"><type>/api/v1/error/rateLimited</type><title>t</title></problem>"#;
        assert_eq!(problem_code(xml), Some("rateLimited"));
        let absolute = b"<problem><type>https://pix.example/api/v1/error/tooManyStreams</type></problem>";
        assert_eq!(problem_code(absolute), Some("tooManyStreams"));
        assert_eq!(problem_code(br#"{"type":"/api/v1/error/unavailable","status":503}"#), Some("unavailable"));
        assert_eq!(problem_code(br#"{"code":"rateLimited","type":"about:blank"}"#), Some("rateLimited"));
        assert_eq!(problem_code(b"<problem><title>no type</title></problem>"), None);
        assert_eq!(problem_code(b"\xff\xfe"), None);
        assert_eq!(problem_code(b""), None);
    }

    #[test]
    fn labels_name_the_status_and_the_problem() {
        let body = b"<problem><type>/api/v1/error/tooManyStreams</type></problem>";
        assert_eq!(label(StatusCode::TOO_MANY_REQUESTS, body), TOO_MANY_STREAMS);
        assert_eq!(label(StatusCode::SERVICE_UNAVAILABLE, b""), "503 ?");
        assert_eq!(label(StatusCode::NO_CONTENT, body), "204");
        assert_eq!(label(StatusCode::ACCEPTED, b""), "202");
        assert_eq!(failed("timeout"), "failed: timeout");
    }

    #[test]
    fn summaries_count_served_limited_and_shed() {
        let mut counts = Counts::new();
        for label in ["200", "204", "204", RATE_LIMITED, TOO_MANY_STREAMS, "503 unavailable", "failed: timeout"] {
            count(&mut counts, label);
        }
        let summary = AnswerSummary::of(&counts);
        assert_eq!(
            (summary.requests, summary.served, summary.rate_limited, summary.too_many_streams, summary.shed),
            (7, 3, 1, 1, 1)
        );
        assert!((summary.shed_share - 1.0 / 7.0).abs() < 1e-12);
        let both = AnswerSummary::merged(&counts, &counts);
        assert_eq!((both.requests, both.by_answer["204"]), (14, 4));
        assert_eq!(AnswerSummary::of(&Counts::new()).shed_share, 0.0);
        assert!(summary.list().starts_with("200: 1, 204: 2"));
    }
}
