//! RFC 7807 problems as answered (the exact XML shape of SPEC §2.6), `Retry-After`
//! and the escaping of problem details.

use reqwest::header::HeaderMap;

use super::answers::{element_text, header};

/// An RFC 7807 problem as answered.
#[derive(Debug)]
pub struct Problem {
    pub headers: HeaderMap,
    pub title: String,
    pub detail: String,
}

/// Asserts that `response` is the RFC 7807 XML problem `code` with `status`, in the
/// exact shape of SPEC §2.6, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Problem {
    let got = response.status();
    let headers = response.headers().clone();
    let url = response.url().path().to_owned();
    let body = response.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{url}: expected {status} {code}, got {got}: {body}");
    let content_type = header(&headers, "content-type").unwrap_or_default();
    assert!(
        content_type.to_ascii_lowercase().starts_with("application/problem+xml"),
        "{url}: problem Content-Type is {content_type:?}: {body}"
    );
    assert!(body.contains("<problem xmlns=\"urn:ietf:rfc:7807\">"), "{url}: not an RFC 7807 XML problem: {body}");
    assert_eq!(element_text(&body, "type").as_deref(), Some(format!("/api/v1/error/{code}").as_str()), "{url}: {body}");
    assert_eq!(element_text(&body, "status").as_deref(), Some(status.to_string().as_str()), "{url}: {body}");
    let title = element_text(&body, "title").unwrap_or_else(|| panic!("{url}: problem without title: {body}"));
    assert!(!title.is_empty(), "{url}: empty title");
    let detail = element_text(&body, "detail").unwrap_or_else(|| panic!("{url}: problem without detail: {body}"));
    assert!(!body.contains("/tmp/") && !body.contains("panicked"), "{url}: problem leaks internals: {body}");
    Problem { headers, title, detail }
}

/// `Retry-After` as an integer number of seconds (SPEC §2.4).
pub fn retry_after(headers: &HeaderMap) -> u64 {
    let text = header(headers, "retry-after").expect("Retry-After present");
    text.parse().unwrap_or_else(|_| panic!("Retry-After {text:?} is not an integer number of seconds"))
}

/// Decodes an XML problem `detail` as it was escaped.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}
