//! The wire form of a `PI-Pull-Next` token: a fixed binary layout, signed with
//! Ed25519 and written as base64url without padding (SPEC.md §2.5).
//!
//! Layout (big-endian integers):
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
//! | 64 | Ed25519 signature over every byte before it |
//!
//! At most 127 bytes, so at most 170 characters. Decoding checks everything, rejects
//! with `InvalidToken` and never panics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::claims::{StreamKind, TokenClaims};

/// A `PI-Pull-Next` token that is malformed, tampered, unsigned, signed by an unknown
/// key or issued for another ISPB. The reason is safe to show the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToken(pub &'static str);

/// The only token format this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Longest token accepted, in characters (SPEC.md §2.5).
pub const MAX_TOKEN_CHARS: usize = 256;
/// Longest key id, in characters.
pub const MAX_KEY_ID_LEN: usize = 16;

/// Kind byte, ISPB, shard, stream, generation, issued_at_ms.
const CLAIMS_LEN: usize = 1 + 8 + 4 + 8 + 8 + 8;
const SIGNATURE_LEN: usize = 64;
/// Bytes that do not depend on the key id: version, key id length, claims, signature.
const FIXED_LEN: usize = 2 + CLAIMS_LEN + SIGNATURE_LEN;
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
const BAD_SIGNATURE: InvalidToken = InvalidToken("bad token signature");

/// Whether `key_id` is 1–16 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_key_id(key_id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&key_id.len()) && key_id.bytes().all(is_key_id_byte)
}

fn is_key_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Lay out, sign and encode a token. `key_id` must satisfy [`is_valid_key_id`]; the
/// key ring guarantees it for every key it holds.
pub(crate) fn encode(key_id: &str, key: &SigningKey, claims: &TokenClaims) -> String {
    debug_assert!(is_valid_key_id(key_id), "key ids are validated when loaded");
    let mut bytes = Vec::with_capacity(FIXED_LEN + key_id.len());
    bytes.push(FORMAT_VERSION);
    // A key id is at most 16 bytes, so the length always fits.
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
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    URL_SAFE_NO_PAD.encode(&bytes)
}

/// Decode `token`, find its verifying key with `key_for(key_id)` and check the
/// signature (`verify_strict`). Every failure is an `InvalidToken`.
pub(crate) fn decode<'k>(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
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
    let (signed, signature) = bytes.split_at_checked(signed_len(key_id_len)).ok_or(WRONG_LENGTH)?;
    let (key_id, claims) = rest.split_at_checked(key_id_len).ok_or(WRONG_LENGTH)?;
    if !key_id.iter().copied().all(is_key_id_byte) {
        return Err(BAD_KEY_ID);
    }
    let key_id = std::str::from_utf8(key_id).map_err(|_| BAD_KEY_ID)?;
    let claims = parse_claims(claims).ok_or(WRONG_LENGTH)??;
    let key = key_for(key_id).ok_or(UNKNOWN_KEY)?;
    let signature = Signature::from_slice(signature).map_err(|_| BAD_SIGNATURE)?;
    key.verify_strict(signed, &signature).map_err(|_| BAD_SIGNATURE)?;
    Ok(claims)
}

/// Length of the signed part of a token whose key id has `key_id_len` bytes.
fn signed_len(key_id_len: usize) -> usize {
    FIXED_LEN - SIGNATURE_LEN + key_id_len
}

/// Parse the claims section (which may be followed by the signature). `None` when it
/// is too short; a bad kind byte is an error of its own.
fn parse_claims(bytes: &[u8]) -> Option<Result<TokenClaims, InvalidToken>> {
    let (&[kind], rest) = bytes.split_first_chunk::<1>()?;
    let (ispb, rest) = rest.split_first_chunk::<8>()?;
    let (shard, rest) = rest.split_first_chunk::<4>()?;
    let (stream, rest) = rest.split_first_chunk::<8>()?;
    let (generation, rest) = rest.split_first_chunk::<8>()?;
    let (issued_at_ms, _signature) = rest.split_first_chunk::<8>()?;
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_ID: &str = "k1";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            ispb: *b"32074986",
            shard: 3,
            stream: 0x0102_0304_0506_0708,
            generation: 42,
            issued_at_ms: 1_750_000_000_123,
            kind: StreamKind::Live,
        }
    }

    fn decode_with(token: &str, key: &SigningKey) -> Result<TokenClaims, InvalidToken> {
        let verifying = key.verifying_key();
        decode(token, |kid| (kid == KEY_ID).then_some(&verifying))
    }

    fn reason(result: Result<TokenClaims, InvalidToken>) -> &'static str {
        match result {
            Err(InvalidToken(reason)) => reason,
            other => panic!("expected InvalidCursor, got {other:?}"),
        }
    }

    fn raw(token: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(token).expect("valid token decodes")
    }

    #[test]
    fn round_trip_both_kinds() {
        for kind in [StreamKind::Live, StreamKind::Replay] {
            let claims = TokenClaims { kind, ..claims() };
            let token = encode(KEY_ID, &key(), &claims);
            assert_eq!(decode_with(&token, &key()).expect("verifies"), claims);
        }
    }

    #[test]
    fn token_is_url_safe_and_fits_with_longest_key_id() {
        let long_id = "abcdefghij_-0123";
        assert_eq!(long_id.len(), MAX_KEY_ID_LEN);
        let max =
            TokenClaims { shard: u32::MAX, stream: u64::MAX, generation: u64::MAX, issued_at_ms: u64::MAX, ..claims() };
        let token = encode(long_id, &key(), &max);
        assert!(token.len() <= MAX_TOKEN_CHARS, "{} chars", token.len());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        let verifying = key().verifying_key();
        assert_eq!(decode(&token, |kid| (kid == long_id).then_some(&verifying)).expect("verifies"), max);
    }

    #[test]
    fn identical_claims_give_identical_tokens() {
        assert_eq!(encode(KEY_ID, &key(), &claims()), encode(KEY_ID, &key(), &claims()));
    }

    #[test]
    fn every_single_byte_tamper_is_rejected() {
        let bytes = raw(&encode(KEY_ID, &key(), &claims()));
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut tampered = bytes.clone();
                tampered[i] ^= flip;
                let token = URL_SAFE_NO_PAD.encode(&tampered);
                assert!(decode_with(&token, &key()).is_err(), "byte {i} ^ {flip:#x} accepted");
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let token = encode(KEY_ID, &key(), &claims());
        for len in 0..token.len() {
            assert!(decode_with(&token[..len], &key()).is_err(), "prefix of {len} chars accepted");
        }
        let bytes = raw(&token);
        for len in 0..bytes.len() {
            let token = URL_SAFE_NO_PAD.encode(&bytes[..len]);
            assert!(decode_with(&token, &key()).is_err(), "prefix of {len} bytes accepted");
        }
    }

    #[test]
    fn zeroed_signature_is_rejected() {
        let mut bytes = raw(&encode(KEY_ID, &key(), &claims()));
        let signed_len = bytes.len() - SIGNATURE_LEN;
        bytes[signed_len..].fill(0);
        assert_eq!(reason(decode_with(&URL_SAFE_NO_PAD.encode(&bytes), &key())), "bad token signature");
    }

    #[test]
    fn signature_of_another_key_is_rejected() {
        let token = encode(KEY_ID, &SigningKey::from_bytes(&[8u8; 32]), &claims());
        assert_eq!(reason(decode_with(&token, &key())), "bad token signature");
    }

    #[test]
    fn unknown_key_id_is_rejected() {
        let token = encode("other", &key(), &claims());
        assert_eq!(reason(decode_with(&token, &key())), "token signed by unknown key");
    }

    #[test]
    fn rejections_carry_their_reason() {
        let token = encode(KEY_ID, &key(), &claims());
        let bytes = raw(&token);
        let with = |i: usize, b: u8| {
            let mut t = bytes.clone();
            t[i] = b;
            URL_SAFE_NO_PAD.encode(&t)
        };
        assert_eq!(reason(decode_with("", &key())), "empty token");
        assert_eq!(reason(decode_with(&"A".repeat(MAX_TOKEN_CHARS + 1), &key())), "token too long");
        assert_eq!(reason(decode_with(&format!("{token}="), &key())), "token is not base64url");
        assert_eq!(reason(decode_with(&format!("+{}", &token[1..]), &key())), "token is not base64url");
        assert_eq!(reason(decode_with(&format!("{token}AAAA"), &key())), "token has wrong length");
        assert_eq!(reason(decode_with(&with(0, 2), &key())), "unknown token format version");
        assert_eq!(reason(decode_with(&with(1, 0), &key())), "bad key id in token");
        assert_eq!(reason(decode_with(&with(1, 17), &key())), "bad key id in token");
        assert_eq!(reason(decode_with(&with(2, b'.'), &key())), "bad key id in token");
        assert_eq!(reason(decode_with(&with(2 + KEY_ID.len(), 0), &key())), "bad stream kind in token");
        assert_eq!(reason(decode_with(&with(2 + KEY_ID.len(), 3), &key())), "bad stream kind in token");
    }

    #[test]
    fn key_ids_are_checked() {
        for good in ["a", "dev-1", "K_2024-01", "abcdefghijklmnop"] {
            assert!(is_valid_key_id(good), "{good}");
        }
        for bad in ["", "abcdefghijklmnopq", "a.b", "a b", "é", "a/b", "a\n"] {
            assert!(!is_valid_key_id(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn random_strings_never_panic_or_verify(s in "\\PC{0,300}") {
            prop_assert!(decode_with(&s, &key()).is_err());
        }

        #[test]
        fn random_base64url_never_panics_or_verifies(s in "[A-Za-z0-9_-]{0,260}") {
            prop_assert!(decode_with(&s, &key()).is_err());
        }

        #[test]
        fn mutated_tokens_never_panic_or_verify(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
            cut in any::<prop::sample::Index>(),
            extra in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let original = raw(&encode(KEY_ID, &key(), &claims()));
            let mut bytes = original.clone();
            for (at, xor) in &edits {
                let i = at.index(bytes.len());
                bytes[i] ^= xor;
            }
            // Sometimes also truncate or extend, never to the original bytes.
            if extra.len() == 1 {
                bytes.truncate(cut.index(bytes.len()));
            } else {
                bytes.extend_from_slice(&extra);
            }
            prop_assume!(bytes != original);
            prop_assert!(decode_with(&URL_SAFE_NO_PAD.encode(&bytes), &key()).is_err());
        }
    }
}
