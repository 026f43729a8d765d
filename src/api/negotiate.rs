//! What the client asked for: one message or a multipart batch (`Accept`), gzip or
//! identity (`Accept-Encoding`), and, in strict mode, only ICOM's allow-listed
//! request headers.

use axum::http::{HeaderMap, header};

use crate::api::ApiError;
use crate::pull::ReadSize;

/// Request headers ICOM allows (strict mode refuses any other).
const ICOM_ALLOWED_HEADERS: [&str; 12] = [
    "accept",
    "accept-encoding",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "max-forwards",
    "transfer-encoding",
    "user-agent",
    "via",
];

/// The representation a pull answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPrefs {
    /// `multipart/mixed` batch (up to `max_batch`) instead of one bare XML message.
    pub multipart: bool,
    /// Compress the whole body with gzip.
    pub gzip: bool,
}

impl ReadPrefs {
    /// Reads `Accept` and `Accept-Encoding`; 406 for an `Accept` we cannot serve.
    pub fn from_headers(headers: &HeaderMap) -> Result<ReadPrefs, ApiError> {
        let multipart = match headers.get(header::ACCEPT) {
            None => false,
            Some(value) => {
                let text = value.to_str().map_err(|_| ApiError::InvalidHeader("Accept is not ASCII".into()))?;
                accepts(text)?
            }
        };
        let gzip = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|coding| {
                let mut parts = coding.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default();
                let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
                (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")) && !refused
            });
        Ok(ReadPrefs { multipart, gzip })
    }

    /// How many messages one response may carry.
    pub fn size(&self) -> ReadSize {
        if self.multipart { ReadSize::Batch } else { ReadSize::One }
    }
}

/// `true` for multipart, `false` for a single XML message, 406 otherwise.
fn accepts(accept: &str) -> Result<bool, ApiError> {
    let media: Vec<String> = accept
        .split(',')
        .map(|range| range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .collect();
    if media.iter().any(|m| m == "multipart/mixed") {
        return Ok(true);
    }
    if media.is_empty() || media.iter().any(|m| m == "application/xml" || m == "*/*" || m == "application/*") {
        return Ok(false);
    }
    Err(ApiError::NotAcceptable(format!("cannot produce {accept:?}; use application/xml or multipart/mixed")))
}

/// Strict mode: refuse any header outside the ICOM allow-list, naming it.
pub fn check_allowed_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.keys().find(|name| !ICOM_ALLOWED_HEADERS.contains(&name.as_str())) {
        Some(name) => Err(ApiError::InvalidHeader(format!("header {name} is not allowed"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn prefs(accept: Option<&str>, encoding: Option<&str>) -> Result<ReadPrefs, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(a).expect("ascii"));
        }
        if let Some(e) = encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(e).expect("ascii"));
        }
        ReadPrefs::from_headers(&headers)
    }

    #[test]
    fn accept_selects_single_or_multipart() {
        assert!(!prefs(None, None).expect("ok").multipart);
        assert!(!prefs(Some("application/xml"), None).expect("ok").multipart);
        assert!(!prefs(Some("*/*"), None).expect("ok").multipart);
        assert!(prefs(Some("multipart/mixed"), None).expect("ok").multipart);
        assert!(prefs(Some("Multipart/Mixed; q=1, application/xml"), None).expect("ok").multipart);
        assert!(matches!(prefs(Some("application/json"), None), Err(ApiError::NotAcceptable(_))));
    }

    #[test]
    fn gzip_only_when_asked_and_not_refused() {
        assert!(prefs(None, Some("gzip, deflate")).expect("ok").gzip);
        assert!(!prefs(None, Some("deflate")).expect("ok").gzip);
        assert!(!prefs(None, Some("gzip;q=0")).expect("ok").gzip);
        assert!(!prefs(None, None).expect("ok").gzip);
    }

    #[test]
    fn strict_mode_names_the_offending_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/xml"));
        assert!(check_allowed_headers(&headers).is_ok());
        headers.insert("traceparent", HeaderValue::from_static("00-abc"));
        let err = check_allowed_headers(&headers).expect_err("refused");
        assert!(err.to_string().contains("traceparent"));
    }
}
