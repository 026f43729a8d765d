//! Parsing of producer `multipart/mixed` bodies (SPEC.md §3, RFC 2046 §5.1.1): the
//! boundary from the `Content-Type`, then the parts, each body a zero-copy slice of the
//! request. Preamble and epilogue are ignored; CRLF or bare LF line ends are accepted.

use bytes::Bytes;
use memchr::{memchr, memmem};

use super::MultipartError;

/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY_LEN: usize = 70;

/// One parsed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPart {
    /// Header names lowercased, values trimmed, in order of appearance.
    pub headers: Vec<(String, String)>,
    /// The part's body: a slice of the input, without the CRLF before the next delimiter.
    pub body: Bytes,
}

impl ParsedPart {
    /// The first value of header `name` (matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits `body` into its parts; more than `max_parts` parts is an error.
pub fn parse(body: &Bytes, boundary: &str, max_parts: usize) -> Result<Vec<ParsedPart>, MultipartError> {
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY_LEN {
        return Err(MultipartError::BoundaryLength);
    }
    let data: &[u8] = body;
    let dash_boundary = format!("--{boundary}");
    let mut start = find_opening(data, dash_boundary.as_bytes())?;
    let line_needle = format!("\n{dash_boundary}").into_bytes();
    let line_finder = memmem::Finder::new(&line_needle);
    let mut parts = Vec::new();
    loop {
        // Search from the LF that ended the previous delimiter line, so an empty part
        // directly followed by a delimiter is still found.
        let (end, next) =
            find_next_delimiter(data, start - 1, &line_finder, dash_boundary.len()).ok_or(MultipartError::NoClosing)?;
        if parts.len() == max_parts {
            return Err(MultipartError::TooManyParts { max: max_parts });
        }
        parts.push(parse_part(body, start, end.max(start), parts.len() + 1)?);
        match next {
            Delimiter::Close => return Ok(parts),
            Delimiter::Open(next_start) => start = next_start,
        }
    }
}

/// Reads the boundary of a `multipart/mixed` media type, e.g.
/// `multipart/mixed; charset=x; Boundary="simple boundary"`. `None` when the type is
/// not `multipart/mixed` or the boundary is missing, empty, longer than 70
/// characters, ends in a space or holds characters other than printable ASCII.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    let (media, mut rest) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !media.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    let mut boundary = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = match rest.split_once('=') {
            Some(split) => split,
            None => break,
        };
        let (value, remaining) = parameter_value(after.trim_start())?;
        if boundary.is_none() && name.trim().eq_ignore_ascii_case("boundary") {
            boundary = Some(value);
        }
        rest = remaining;
    }
    boundary.filter(|b| valid_boundary(b))
}

/// A `--boundary` occurrence that is a delimiter.
enum Delimiter {
    /// A delimiter line; the next part starts at this index.
    Open(usize),
    /// The close delimiter `--boundary--`.
    Close,
}

/// Finds the first delimiter line (at the body's start or after an LF) and returns the
/// index where the first part starts.
fn find_opening(data: &[u8], dash_boundary: &[u8]) -> Result<usize, MultipartError> {
    for at in memmem::find_iter(data, dash_boundary) {
        if at > 0 && data[at - 1] != b'\n' {
            continue;
        }
        match classify(data, at + dash_boundary.len()) {
            Some(Delimiter::Open(start)) => return Ok(start),
            Some(Delimiter::Close) => return Err(MultipartError::NoParts),
            None => {}
        }
    }
    Err(MultipartError::NoOpening)
}

/// From `from`, finds the next `\n--boundary` that is a delimiter: returns where the
/// current part ends (before the CRLF or LF, which belongs to the delimiter) and what
/// the delimiter is.
fn find_next_delimiter(
    data: &[u8],
    from: usize,
    line_finder: &memmem::Finder<'_>,
    dash_len: usize,
) -> Option<(usize, Delimiter)> {
    let mut search = from;
    while let Some(found) = line_finder.find(&data[search..]) {
        let lf = search + found;
        match classify(data, lf + 1 + dash_len) {
            None => search = lf + 1,
            Some(delimiter) => {
                let end = if lf > 0 && data[lf - 1] == b'\r' { lf - 1 } else { lf };
                return Some((end, delimiter));
            }
        }
    }
    None
}

/// Classifies the bytes right after a `--boundary` occurrence; `None` when the boundary
/// text is followed by anything but `--`, or padding and a line end (not a delimiter).
fn classify(data: &[u8], after: usize) -> Option<Delimiter> {
    let rest = &data[after..];
    if rest.starts_with(b"--") {
        return Some(Delimiter::Close);
    }
    let padding = rest.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let line_end = &rest[padding..];
    if line_end.starts_with(b"\r\n") {
        Some(Delimiter::Open(after + padding + 2))
    } else if line_end.starts_with(b"\n") {
        Some(Delimiter::Open(after + padding + 1))
    } else {
        None
    }
}

/// Parses the part in `body[start..end]`: header lines up to the first empty line,
/// then the body.
fn parse_part(body: &Bytes, start: usize, end: usize, number: usize) -> Result<ParsedPart, MultipartError> {
    let data: &[u8] = body;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut at = start;
    while at < end {
        let (line, next) = match memchr(b'\n', &data[at..end]) {
            Some(k) => (&data[at..at + k], at + k + 1),
            None => (&data[at..end], end),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(ParsedPart { headers, body: body.slice(next..end) });
        }
        let bad = || MultipartError::MalformedHeader { part: number };
        let text = std::str::from_utf8(line).map_err(|_| bad())?;
        if text.starts_with([' ', '\t']) {
            // Obsolete folding: a continuation of the previous header's value.
            // Joined by one space, the value stays trimmed: folding onto an empty
            // first line, or a blank continuation line, adds no space.
            let (_, value) = headers.last_mut().ok_or_else(bad)?;
            let more = text.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
        } else {
            let (name, value) = text.split_once(':').ok_or_else(bad)?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(bad());
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        at = next;
    }
    Ok(ParsedPart { headers, body: body.slice(end..end) })
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads a parameter value (quoted string or token) and returns it with the rest of
/// the header; `None` for an unterminated quoted string.
fn parameter_value(s: &str) -> Option<(String, &str)> {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find(';').unwrap_or(s.len());
        return Some((s[..end].trim().to_string(), &s[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            _ => value.push(c),
        }
    }
    None
}

fn valid_boundary(b: &str) -> bool {
    !b.is_empty() && b.len() <= MAX_BOUNDARY_LEN && !b.ends_with(' ') && b.bytes().all(|c| (b' '..=b'~').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multipart::{Part, choose_boundary, content_type, render};
    use http::{HeaderName, HeaderValue};

    fn xml_part(i: usize, body: Vec<u8>) -> Part {
        Part {
            headers: vec![
                (http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8")),
                (HeaderName::from_static("pi-resourceid"), HeaderValue::from_str(&format!("id-{i}")).expect("ascii")),
            ],
            body: Bytes::from(body),
        }
    }

    fn round_trip(parts: &[Part]) -> Vec<ParsedPart> {
        let boundary = choose_boundary(parts);
        let rendered = render(parts, &boundary);
        let found = boundary_from_content_type(&content_type(&boundary)).expect("boundary");
        assert_eq!(found, boundary);
        let parsed = parse(&rendered, &found, 100).expect("parses");
        assert_eq!(parsed.len(), parts.len());
        for (i, (p, q)) in parts.iter().zip(&parsed).enumerate() {
            assert_eq!(p.body, q.body);
            assert_eq!(q.header("Content-Type"), Some("application/xml; charset=utf-8"));
            assert_eq!(q.header("PI-ResourceId"), Some(format!("id-{i}").as_str()));
            assert_eq!(q.headers[1].0, "pi-resourceid");
            let range = rendered.as_ptr() as usize..rendered.as_ptr() as usize + rendered.len();
            assert!(q.body.is_empty() || range.contains(&(q.body.as_ptr() as usize)), "zero-copy");
        }
        parsed
    }

    #[test]
    fn round_trip_one_and_ten_parts() {
        round_trip(&[xml_part(0, b"<Envelope/>".to_vec())]);
        let ten: Vec<Part> = (0..10).map(|i| xml_part(i, format!("<Envelope n=\"{i}\"/>").into_bytes())).collect();
        round_trip(&ten);
    }

    #[test]
    fn bodies_with_dashes_crlf_and_near_boundaries_survive() {
        let tricky = b"--\r\n\r\n-- x --\r\n--pixstream-\r\n\n--\n\r\nend\r\n".to_vec();
        round_trip(&[xml_part(0, tricky), xml_part(1, Vec::new()), xml_part(2, b"\r\n".to_vec())]);
    }

    #[test]
    fn lines_that_extend_the_boundary_are_content() {
        let body = Bytes::from_static(b"--b\r\n\r\none\r\n--bb\r\n--b-x\r\n--b--\r\n");
        let parts = parse(&body, "b", 10).expect("parses");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, &b"one\r\n--bb\r\n--b-x"[..]);
    }

    #[test]
    fn rfc2046_example_with_quoted_boundary_preamble_and_epilogue() {
        let ct = "Multipart/Mixed; charset=us-ascii; BOUNDARY=\"simple boundary\"";
        let boundary = boundary_from_content_type(ct).expect("boundary");
        assert_eq!(boundary, "simple boundary");
        let body = Bytes::from_static(
            b"This is the preamble.\r\n--simple boundary\r\n\r\nThis is implicitly typed plain \
              US-ASCII text.\r\nIt does NOT end with a linebreak.\r\n--simple boundary  \r\n\
              Content-type: text/plain; charset=us-ascii\r\n\r\nThis is explicitly typed plain \
              US-ASCII text.\r\nIt DOES end with a linebreak.\r\n\r\n--simple boundary--\r\n\
              This is the epilogue.\r\n",
        );
        let parts = parse(&body, &boundary, 10).expect("parses");
        assert_eq!(parts.len(), 2);
        assert!(parts[0].headers.is_empty());
        assert!(parts[0].body.ends_with(b"linebreak."));
        assert_eq!(parts[1].header("content-type"), Some("text/plain; charset=us-ascii"));
        assert!(parts[1].body.ends_with(b"linebreak.\r\n"));
    }

    #[test]
    fn folded_values_stay_trimmed() {
        // Found by the multipart_parse fuzz target (fuzz/corpus/multipart_parse/fold-onto-empty).
        let body = Bytes::from_static(b"--b\r\nx-long: \r\n id: ab\r\n\r\n<a/>\r\n--b--\r\n");
        let parts = parse(&body, "b", 10).expect("parses");
        assert_eq!(parts[0].header("x-long"), Some("id: ab"));
        // And a blank continuation line (fuzz/corpus/multipart_parse/blank-continuation).
        let body = Bytes::from_static(b"--b\r\nx-long: a\r\n  \r\n\r\n<a/>\r\n--b--\r\n");
        assert_eq!(parse(&body, "b", 10).expect("parses")[0].header("x-long"), Some("a"));
    }

    #[test]
    fn bare_lf_padding_and_folded_headers_are_accepted() {
        let body = Bytes::from_static(b"--b \t\nA-B:  x \n  y\n\nbody\n--b--");
        let parts = parse(&body, "b", 10).expect("parses");
        assert_eq!(parts[0].headers, vec![("a-b".to_string(), "x y".to_string())]);
        assert_eq!(parts[0].body, &b"body"[..]);
    }

    #[test]
    fn framing_errors_have_reasons() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"no delimiter here", 10, "no opening multipart delimiter"),
            (b"x--b\r\n\r\nbody\r\n--b--", 10, "multipart body has no parts"),
            (b"--b\r\n\r\nbody\r\n", 10, "missing closing multipart delimiter"),
            (b"--b\r\n\r\nbody\r\n--b\r\n\r\nmore", 10, "missing closing multipart delimiter"),
            (b"--b--\r\n", 10, "multipart body has no parts"),
            (b"--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--", 1, "more than 1 parts"),
            (b"--b\r\nNoColonHere\r\n\r\nx\r\n--b--", 10, "part 1: malformed header line"),
            (b"--b\r\n\r\n1\r\n--b\r\nBad Name: v\r\n\r\n\r\n--b--", 10, "part 2: malformed header line"),
            (b"--b\r\n folded-first\r\n\r\nx\r\n--b--", 10, "part 1: malformed header line"),
        ];
        for (body, max, reason) in cases {
            let e = parse(&Bytes::copy_from_slice(body), "b", *max).expect_err("rejected");
            assert_eq!(e.to_string(), *reason);
        }
        let over = format!("{}--b--", "--b\r\n\r\nx\r\n".repeat(101));
        let e = parse(&Bytes::from(over), "b", 100).expect_err("too many");
        assert_eq!(e, MultipartError::TooManyParts { max: 100 });
        assert_eq!(e.to_string(), "more than 100 parts");
        assert_eq!(parse(&Bytes::new(), "", 10), Err(MultipartError::BoundaryLength));
    }

    #[test]
    fn content_type_boundaries() {
        let ok = [
            ("multipart/mixed; boundary=abc", "abc"),
            ("multipart/mixed;boundary=abc;charset=x", "abc"),
            ("MULTIPART/MIXED; Boundary=\"a;b\"; x=y", "a;b"),
            ("multipart/mixed; x=\"q;boundary=no\"; boundary=yes", "yes"),
            ("multipart/mixed; boundary=\"es\\\"c\"", "es\"c"),
        ];
        for (ct, expected) in ok {
            assert_eq!(boundary_from_content_type(ct).as_deref(), Some(expected), "{ct}");
        }
        let long = format!("multipart/mixed; boundary={}", "a".repeat(71));
        let bad = [
            "application/xml",
            "multipart/related; boundary=abc",
            "multipart/mixed",
            "multipart/mixed; charset=x",
            "multipart/mixed; boundary=",
            "multipart/mixed; boundary=\"\"",
            "multipart/mixed; boundary=\"unterminated",
            "multipart/mixed; boundary=\"trailing \"",
            long.as_str(),
        ];
        for ct in bad {
            assert_eq!(boundary_from_content_type(ct), None, "{ct}");
        }
        let max = format!("multipart/mixed; boundary={}", "a".repeat(70));
        assert!(boundary_from_content_type(&max).is_some());
    }
}
