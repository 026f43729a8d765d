//! `multipart_parse`: parsing any input never panics, and
//! whatever parses renders (with a fresh boundary) to a body that parses to the same
//! parts.
//!
//! Input layout: byte 0 is the boundary length `n`, bytes 1..=n the boundary, the
//! rest the body.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::multipart::{Part, choose_boundary, parse, render};

/// Most parts a fuzz input may hold (the producer limit).
const MAX_PARTS: usize = 100;

/// Checks one fuzz input; panics when the property does not hold.
pub fn check_parse_round_trip(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n);
    if rest.len() < n {
        return;
    }
    let Ok(boundary) = std::str::from_utf8(&rest[..n]) else { return };
    let body = Bytes::copy_from_slice(&rest[n..]);
    let Ok(parsed) = parse(&body, boundary, MAX_PARTS) else { return };
    let Some(parts) = parsed
        .iter()
        .map(|p| {
            let headers = p
                .headers
                .iter()
                .map(|(name, value)| {
                    Some((HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_str(value).ok()?))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Part { headers, body: p.body.clone() })
        })
        .collect::<Option<Vec<_>>>()
    else {
        // Headers the HTTP types would not carry: nothing to render.
        return;
    };
    let fresh = choose_boundary(&parts);
    let again = parse(&render(&parts, &fresh), &fresh, MAX_PARTS).expect("a rendered body parses");
    assert_eq!(again, parsed, "render then parse gives back the parts");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_real_body_round_trips() {
        let mut input = vec![3u8];
        input.extend_from_slice(b"xyz--xyz\r\ncontent-type: application/xml\r\n\r\n<a/>\r\n--xyz--\r\n");
        super::check_parse_round_trip(&input);
    }
}
