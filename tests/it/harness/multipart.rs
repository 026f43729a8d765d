//! The independent `multipart/mixed` reader of pull bodies: framing checked on the
//! wire (CRLF, delimiters, the boundary absent from every part), then parsed by
//! `mailparse`, not by the server's renderer.

use super::answers::{Msg, build_msg};

/// The `boundary` parameter of a `multipart/mixed` content type.
pub fn boundary_of(content_type: &str) -> String {
    let parsed = mailparse::parse_content_type(content_type);
    assert_eq!(parsed.mimetype, "multipart/mixed", "{content_type}");
    let boundary = parsed.params.get("boundary").unwrap_or_else(|| panic!("no boundary in {content_type}")).clone();
    assert!((1..=70).contains(&boundary.len()), "RFC 2046 boundary length: {boundary:?}");
    boundary
}

/// Parses a `multipart/mixed` pull body with `mailparse` (independent of the server's
/// renderer) and checks its framing: CRLF line ends, a closing delimiter, the boundary
/// absent from every part, each part `application/xml; charset=utf-8` with the
/// per-message headers.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Msg> {
    let boundary = boundary_of(content_type);
    let delimiter = format!("--{boundary}");
    // Framing on the wire.
    assert!(
        body.starts_with(format!("{delimiter}\r\n").as_bytes())
            || find(body, format!("\r\n{delimiter}\r\n").as_bytes()).is_some(),
        "no first delimiter line"
    );
    let close = format!("\r\n{delimiter}--");
    let close_at = find(body, close.as_bytes()).unwrap_or_else(|| panic!("no closing delimiter"));
    let after = &body[close_at + close.len()..];
    assert!(after.is_empty() || after == b"\r\n", "unexpected bytes after the closing delimiter");
    let raw_parts = split_parts(body, &delimiter);
    for raw in &raw_parts {
        let header_end = find(raw, b"\r\n\r\n").expect("part headers end with CRLF CRLF");
        let head = &raw[..header_end];
        assert!(crlf_only(head), "part header lines end with CRLF");
        assert!(find(&raw[header_end + 4..], boundary.as_bytes()).is_none(), "boundary occurs inside a part");
    }
    // Independent parse.
    let mut mail = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    mail.extend_from_slice(body);
    let parsed = mailparse::parse_mail(&mail).expect("mailparse parses the body");
    assert_eq!(parsed.subparts.len(), raw_parts.len(), "mailparse and the framing check disagree on the part count");
    parsed
        .subparts
        .iter()
        .map(|part| {
            use mailparse::MailHeaderMap;
            let get = |name: &str| part.headers.get_first_value(name).unwrap_or_else(|| panic!("part without {name}"));
            assert_eq!(get("Content-Type"), "application/xml; charset=utf-8");
            let body = part.get_body_raw().expect("part body");
            build_msg(get("PI-ResourceId"), get("Pix-Sequence"), get("Pix-Message-Type"), get("Pix-Enqueued-At"), body)
        })
        .collect()
}

/// The raw parts between delimiter lines (for framing checks).
fn split_parts(body: &[u8], delimiter: &str) -> Vec<Vec<u8>> {
    let line = format!("{delimiter}\r\n");
    let mut parts = Vec::new();
    let mut from = if body.starts_with(line.as_bytes()) {
        line.len()
    } else {
        find(body, format!("\r\n{line}").as_bytes()).expect("first delimiter") + 2 + line.len()
    };
    loop {
        let sep = format!("\r\n{delimiter}");
        let end = from + find(&body[from..], sep.as_bytes()).expect("delimiter after part");
        parts.push(body[from..end].to_vec());
        let rest = &body[end + sep.len()..];
        if rest.starts_with(b"--") {
            return parts;
        }
        assert!(rest.starts_with(b"\r\n"), "delimiter line does not end with CRLF");
        from = end + sep.len() + 2;
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether every LF in `bytes` is preceded by CR.
pub fn crlf_only(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, b)| *b != b'\n' || (i > 0 && bytes[i - 1] == b'\r'))
}
