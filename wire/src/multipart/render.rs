//! Rendering of `multipart/mixed` pull responses (SPEC.md §2.2): a boundary that never
//! occurs in any part, and the body built in one exactly-sized buffer with CRLF line
//! ends, each part's headers, and the closing delimiter.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use memchr::memmem;
use rand::Rng;
use rand::distributions::Alphanumeric;

/// Prefix of every boundary this server chooses.
const BOUNDARY_PREFIX: &str = "pixstream-";
/// Random alphanumerics after the prefix (~143 bits).
const BOUNDARY_RANDOM_CHARS: usize = 24;

/// One part of a multipart body: its headers and its payload.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// A fresh random boundary (`pixstream-` + 24 alphanumerics) that occurs in no part body.
pub fn choose_boundary(parts: &[Part]) -> String {
    choose_boundary_with(parts, &mut rand::thread_rng())
}

/// [`choose_boundary`] drawing from `rng`; draws again until no body contains the token.
pub fn choose_boundary_with<R: Rng + ?Sized>(parts: &[Part], rng: &mut R) -> String {
    loop {
        let mut boundary = String::with_capacity(BOUNDARY_PREFIX.len() + BOUNDARY_RANDOM_CHARS);
        boundary.push_str(BOUNDARY_PREFIX);
        boundary.extend((0..BOUNDARY_RANDOM_CHARS).map(|_| char::from(rng.sample(Alphanumeric))));
        let finder = memmem::Finder::new(boundary.as_bytes());
        if parts.iter().all(|p| finder.find(&p.body).is_none()) {
            return boundary;
        }
    }
}

/// The response `Content-Type` for a body rendered with `boundary`.
pub fn content_type(boundary: &str) -> String {
    format!("multipart/mixed; boundary=\"{boundary}\"")
}

/// Renders `parts` as a `multipart/mixed` body delimited by `boundary`.
///
/// Each part is `--{boundary}\r\n`, its headers as `Name: value\r\n` (names in their
/// conventional capitalisation, e.g. `Content-Type`, `PI-ResourceId`), `\r\n`, the body,
/// `\r\n`; then `--{boundary}--\r\n`. Callers pass at least one part and a boundary from
/// [`choose_boundary`].
pub fn render(parts: &[Part], boundary: &str) -> Bytes {
    let capacity = rendered_len(parts, boundary);
    let mut out = BytesMut::with_capacity(capacity);
    for part in parts {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in &part.headers {
            put_display_name(&mut out, name.as_str());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&part.body);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    debug_assert_eq!(out.len(), capacity);
    out.freeze()
}

/// The exact length [`render`] produces.
fn rendered_len(parts: &[Part], boundary: &str) -> usize {
    let delimiter_line = 2 + boundary.len() + 2;
    let per_part: usize = parts
        .iter()
        .map(|p| {
            let headers: usize = p.headers.iter().map(|(n, v)| n.as_str().len() + 2 + v.len() + 2).sum();
            delimiter_line + headers + 2 + p.body.len() + 2
        })
        .sum();
    per_part + delimiter_line + 2
}

/// Writes a (lowercase) header name in its conventional capitalisation, same length.
fn put_display_name(out: &mut BytesMut, lower: &str) {
    const SPECIAL: &[(&str, &str)] = &[("pi-resourceid", "PI-ResourceId")];
    if let Some((_, shown)) = SPECIAL.iter().find(|(l, _)| *l == lower) {
        out.put_slice(shown.as_bytes());
        return;
    }
    if let Some(rest) = lower.strip_prefix("pi-") {
        out.put_slice(b"PI-");
        put_title_case(out, rest);
    } else {
        put_title_case(out, lower);
    }
}

/// `content-type` → `Content-Type`.
fn put_title_case(out: &mut BytesMut, name: &str) {
    let mut word_start = true;
    for b in name.bytes() {
        out.put_u8(if word_start { b.to_ascii_uppercase() } else { b });
        word_start = b == b'-';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn part(body: impl Into<Bytes>) -> Part {
        Part {
            headers: vec![
                (http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8")),
                (HeaderName::from_static("pi-resourceid"), HeaderValue::from_static("abc")),
                (HeaderName::from_static("pix-sequence"), HeaderValue::from_static("7")),
                (HeaderName::from_static("pi-pull-next"), HeaderValue::from_static("/x")),
            ],
            body: body.into(),
        }
    }

    #[test]
    fn renders_exact_layout() {
        let out = render(&[part(&b"<a/>"[..]), part(&b""[..])], "B");
        let one = "--B\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: abc\r\n\
                   Pix-Sequence: 7\r\nPI-Pull-Next: /x\r\n\r\n";
        let expected = format!("{one}<a/>\r\n{one}\r\n--B--\r\n");
        assert_eq!(out, expected.as_bytes());
        assert_eq!(rendered_len(&[part(&b"<a/>"[..]), part(&b""[..])], "B"), expected.len());
    }

    #[test]
    fn boundary_shape_and_content_type() {
        let b = choose_boundary(&[part(&b"x"[..])]);
        assert_eq!(b.len(), BOUNDARY_PREFIX.len() + BOUNDARY_RANDOM_CHARS);
        assert!(b.starts_with(BOUNDARY_PREFIX));
        assert!(b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
        assert_eq!(content_type("q"), "multipart/mixed; boundary=\"q\"");
    }

    #[test]
    fn boundary_retries_on_collision() {
        let first = choose_boundary_with(&[], &mut StdRng::seed_from_u64(7));
        let body = format!("xx--{first}\r\nyy").into_bytes();
        let parts = [part(&b"other"[..]), part(body)];
        // Same seed: the first draw is the colliding token, so a retry must happen.
        let second = choose_boundary_with(&parts, &mut StdRng::seed_from_u64(7));
        assert_ne!(first, second);
        assert!(parts.iter().all(|p| memmem::find(&p.body, second.as_bytes()).is_none()));
    }
}
