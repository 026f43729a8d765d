//! The wire form of a `PI-Pull-Next` token: a fixed binary layout, authenticated with
//! HMAC-SHA256 and written as base64url without padding (SPEC.md §2.5).
//!
//! Layout, format version 2 (big-endian integers):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, [`FORMAT_VERSION`] |
//! | 1 | key id length `n`, 1..=16 |
//! | n | key id, `[A-Za-z0-9_-]` |
//! | 1 | stream kind: 1 live, 2 replay |
//! | 8 | ISPB |
//! | 4 | shard (u32) |
//! | 8 | stream (u64) |
//! | 8 | generation (u64) |
//! | 8 | issued_at_ms (u64) |
//! | 32 | HMAC-SHA256 tag over every byte before it |
//!
//! At most 87 bytes, so at most 116 characters. Version 1 (Ed25519-signed) tokens are
//! refused. Decoding checks everything, compares the tag in constant time, rejects
//! with `InvalidToken` and never panics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::claims::{StreamKind, TokenClaims};
use crate::key::{TAG_LEN, TokenKey};

/// A `PI-Pull-Next` token that is malformed, tampered, unauthenticated, of an unknown
/// key or issued for another ISPB. The reason is safe to show the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToken(pub &'static str);

/// The only token format this build reads and writes.
pub const FORMAT_VERSION: u8 = 2;
/// Longest token accepted, in characters (SPEC.md §2.5).
pub const MAX_TOKEN_CHARS: usize = 256;
/// Longest key id, in characters.
pub const MAX_KEY_ID_LEN: usize = 16;

/// Kind byte, ISPB, shard, stream, generation, issued_at_ms.
const CLAIMS_LEN: usize = 1 + 8 + 4 + 8 + 8 + 8;
/// Bytes that do not depend on the key id: version, key id length, claims, tag.
const FIXED_LEN: usize = 2 + CLAIMS_LEN + TAG_LEN;
/// Longest token in bytes (longest key id).
const MAX_TOKEN_BYTES: usize = FIXED_LEN + MAX_KEY_ID_LEN;
/// Room for the decoded bytes of the longest acceptable token.
const DECODE_BUF_LEN: usize = MAX_TOKEN_CHARS / 4 * 3;

const KIND_LIVE: u8 = 1;
const KIND_REPLAY: u8 = 2;

const EMPTY: InvalidToken = InvalidToken("empty token");
const TOO_LONG: InvalidToken = InvalidToken("token too long");
const NOT_BASE64URL: InvalidToken = InvalidToken("token is not base64url");
const WRONG_LENGTH: InvalidToken = InvalidToken("token has wrong length");
const UNKNOWN_VERSION: InvalidToken = InvalidToken("unknown token format version");
const BAD_KEY_ID: InvalidToken = InvalidToken("bad key id in token");
const BAD_KIND: InvalidToken = InvalidToken("bad stream kind in token");
const UNKNOWN_KEY: InvalidToken = InvalidToken("token signed by unknown key");
const BAD_MAC: InvalidToken = InvalidToken("bad token MAC");

/// Whether `key_id` is 1–16 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_key_id(key_id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&key_id.len()) && key_id.bytes().all(is_key_id_byte)
}

fn is_key_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Lay out, tag and encode a token. `key_id` must satisfy [`is_valid_key_id`]; the
/// key ring guarantees it for every key it holds. Deterministic: the same key id,
/// key and claims always give the same token.
pub(crate) fn encode(key_id: &str, key: &TokenKey, claims: &TokenClaims) -> String {
    debug_assert!(is_valid_key_id(key_id), "key ids are validated when loaded");
    let mut bytes = Vec::with_capacity(MAX_TOKEN_BYTES);
    bytes.push(FORMAT_VERSION);
    // A valid key id is at most 16 bytes, so the length always fits.
    bytes.push(u8::try_from(key_id.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(key_id.as_bytes());
    bytes.push(match claims.kind {
        StreamKind::Live => KIND_LIVE,
        StreamKind::Replay => KIND_REPLAY,
    });
    bytes.extend_from_slice(&claims.ispb);
    bytes.extend_from_slice(&claims.shard.to_be_bytes());
    bytes.extend_from_slice(&claims.stream.to_be_bytes());
    bytes.extend_from_slice(&claims.generation.to_be_bytes());
    bytes.extend_from_slice(&claims.issued_at_ms.to_be_bytes());
    let tag = key.tag(&bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(&bytes)
}

/// Decode `token`, find its key with `key_for(key_id)` and check its HMAC-SHA256 tag
/// in constant time. Every failure is an `InvalidToken`; no input panics. This is
/// the whole verify path of `KeyRing::verify`.
pub fn decode_and_verify<'k>(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<&'k TokenKey>,
) -> Result<TokenClaims, InvalidToken> {
    if token.is_empty() {
        return Err(EMPTY);
    }
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TOO_LONG);
    }
    let mut buf = [0u8; DECODE_BUF_LEN];
    let len = URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), &mut buf).map_err(|_| NOT_BASE64URL)?;
    let bytes = buf.get(..len).ok_or(WRONG_LENGTH)?;

    let Some((&[version, key_id_len], rest)) = bytes.split_first_chunk::<2>() else {
        return Err(WRONG_LENGTH);
    };
    if version != FORMAT_VERSION {
        return Err(UNKNOWN_VERSION);
    }
    let key_id_len = usize::from(key_id_len);
    if !(1..=MAX_KEY_ID_LEN).contains(&key_id_len) {
        return Err(BAD_KEY_ID);
    }
    if bytes.len() != FIXED_LEN + key_id_len {
        return Err(WRONG_LENGTH);
    }
    let (tagged, tag) = bytes.split_at_checked(bytes.len() - TAG_LEN).ok_or(WRONG_LENGTH)?;
    let (key_id, claims) = rest.split_at_checked(key_id_len).ok_or(WRONG_LENGTH)?;
    if !key_id.iter().copied().all(is_key_id_byte) {
        return Err(BAD_KEY_ID);
    }
    let key_id = std::str::from_utf8(key_id).map_err(|_| BAD_KEY_ID)?;
    let claims = parse_claims(claims).ok_or(WRONG_LENGTH)??;
    let key = key_for(key_id).ok_or(UNKNOWN_KEY)?;
    if !key.verifies(tagged, tag) {
        return Err(BAD_MAC);
    }
    Ok(claims)
}

/// Parse the claims section (which may be followed by the tag). `None` when it is
/// too short; a bad kind byte is an error of its own.
fn parse_claims(bytes: &[u8]) -> Option<Result<TokenClaims, InvalidToken>> {
    let (&[kind], rest) = bytes.split_first_chunk::<1>()?;
    let (ispb, rest) = rest.split_first_chunk::<8>()?;
    let (shard, rest) = rest.split_first_chunk::<4>()?;
    let (stream, rest) = rest.split_first_chunk::<8>()?;
    let (generation, rest) = rest.split_first_chunk::<8>()?;
    let (issued_at_ms, _tag) = rest.split_first_chunk::<8>()?;
    let kind = match kind {
        KIND_LIVE => StreamKind::Live,
        KIND_REPLAY => StreamKind::Replay,
        _ => return Some(Err(BAD_KIND)),
    };
    Some(Ok(TokenClaims {
        ispb: *ispb,
        shard: u32::from_be_bytes(*shard),
        stream: u64::from_be_bytes(*stream),
        generation: u64::from_be_bytes(*generation),
        issued_at_ms: u64::from_be_bytes(*issued_at_ms),
        kind,
    }))
}

#[cfg(test)]
mod tests;
