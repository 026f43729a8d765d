//! The codec against every way a token can be broken: each bit flipped, truncated,
//! extended, of another version, key or kind, or not base64url at all.

use super::*;
use proptest::prelude::*;

const KEY_ID: &str = "k1";

fn key() -> TokenKey {
    TokenKey::from_bytes(&[7u8; 32])
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

fn token() -> String {
    encode(KEY_ID, &key(), &claims())
}

fn decode_with(token: &str, key: &TokenKey) -> Result<TokenClaims, InvalidToken> {
    decode_and_verify(token, |kid| (kid == KEY_ID).then_some(key))
}

fn decode(token: &str) -> Result<TokenClaims, InvalidToken> {
    decode_with(token, &key())
}

fn reason(result: Result<TokenClaims, InvalidToken>) -> &'static str {
    match result {
        Err(InvalidToken(reason)) => reason,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

fn raw(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(token).expect("valid token decodes")
}

fn encoded(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn round_trip_both_kinds() {
    for kind in [StreamKind::Live, StreamKind::Replay] {
        let claims = TokenClaims { kind, ..claims() };
        let token = encode(KEY_ID, &key(), &claims);
        assert_eq!(decode(&token).expect("verifies"), claims);
    }
}

#[test]
fn layout_is_version_2_with_key_id_claims_and_full_tag() {
    let bytes = raw(&token());
    assert_eq!(bytes.len(), 2 + KEY_ID.len() + CLAIMS_LEN + 32);
    assert_eq!(bytes[0], 2, "format version");
    assert_eq!(&bytes[1..4], b"\x02k1", "key id length and key id");
    assert_eq!(bytes[4], KIND_LIVE);
    assert_eq!(&bytes[5..13], b"32074986");
    assert_eq!(&bytes[13..17], &3u32.to_be_bytes());
    assert_eq!(&bytes[17..25], &0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(&bytes[25..33], &42u64.to_be_bytes());
    assert_eq!(&bytes[33..41], &1_750_000_000_123u64.to_be_bytes());
    assert_eq!(&bytes[41..], &key().tag(&bytes[..41]), "HMAC-SHA256 over every byte before it");
}

#[test]
fn token_is_url_safe_and_fits_with_longest_key_id() {
    let long_id = "abcdefghij_-0123";
    assert_eq!(long_id.len(), MAX_KEY_ID_LEN);
    let max =
        TokenClaims { shard: u32::MAX, stream: u64::MAX, generation: u64::MAX, issued_at_ms: u64::MAX, ..claims() };
    let token = encode(long_id, &key(), &max);
    assert_eq!(token.len(), 116, "87 bytes");
    assert!(token.len() <= MAX_TOKEN_CHARS);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
    let key = key();
    assert_eq!(decode_and_verify(&token, |kid| (kid == long_id).then_some(&key)).expect("verifies"), max);
}

#[test]
fn identical_claims_give_identical_tokens() {
    assert_eq!(token(), token());
    let other = TokenClaims { generation: 43, ..claims() };
    assert_ne!(token(), encode(KEY_ID, &key(), &other));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let token = token();
    let bytes = raw(&token);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            assert!(decode(&encoded(&flipped)).is_err(), "byte {i} bit {bit} flipped accepted");
        }
    }
    for i in 0..token.len() {
        for bit in 0..8 {
            let mut flipped = token.clone().into_bytes();
            flipped[i] ^= 1 << bit;
            let Ok(flipped) = String::from_utf8(flipped) else { continue };
            assert!(decode(&flipped).is_err(), "character {i} bit {bit} flipped accepted: {flipped}");
        }
    }
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let token = token();
    for len in 0..token.len() {
        assert!(decode(&token[..len]).is_err(), "prefix of {len} chars accepted");
    }
    let bytes = raw(&token);
    for len in 0..bytes.len() {
        assert!(decode(&encoded(&bytes[..len])).is_err(), "prefix of {len} bytes accepted");
    }
    for extra in [&[0u8][..], &[0, 0], &[0, 0, 0]] {
        let mut longer = bytes.clone();
        longer.extend_from_slice(extra);
        assert_eq!(reason(decode(&encoded(&longer))), "token has wrong length");
    }
}

#[test]
fn padding_bits_of_the_last_character_must_be_zero() {
    // 73 bytes: the last character carries 2 data bits and 4 zero bits.
    let token = token();
    let mut chars = token.clone().into_bytes();
    let last = chars.len() - 1;
    assert!(b"AQgw".contains(&chars[last]), "only the two data bits are set");
    // A→B, Q→R, g→h, w→x: the same data bits, the lowest padding bit set.
    chars[last] += 1;
    let other = String::from_utf8(chars).expect("ASCII");
    assert_eq!(reason(decode(&other)), "token is not base64url");
}

#[test]
fn zeroed_or_foreign_tag_is_rejected() {
    let mut bytes = raw(&token());
    let tagged = bytes.len() - 32;
    bytes[tagged..].fill(0);
    assert_eq!(reason(decode(&encoded(&bytes))), "bad token MAC");
    let foreign = encode(KEY_ID, &TokenKey::from_bytes(&[8u8; 32]), &claims());
    assert_eq!(reason(decode(&foreign)), "bad token MAC");
}

#[test]
fn unknown_key_id_is_rejected() {
    let token = encode("other", &key(), &claims());
    assert_eq!(reason(decode(&token)), "token signed by unknown key");
}

#[test]
fn version_1_tokens_are_refused() {
    // The Ed25519 layout: the same fields followed by a 64-byte signature.
    let mut v1 = vec![1u8, 2];
    v1.extend_from_slice(KEY_ID.as_bytes());
    v1.extend_from_slice(&raw(&token())[4..41]);
    v1.extend_from_slice(&[0x5a; 64]);
    assert_eq!(reason(decode(&encoded(&v1))), "unknown token format version");
}

#[test]
fn rejections_carry_their_reason() {
    let token = token();
    let bytes = raw(&token);
    let with = |i: usize, b: u8| {
        let mut t = bytes.clone();
        t[i] = b;
        encoded(&t)
    };
    assert_eq!(reason(decode("")), "empty token");
    assert_eq!(reason(decode(&"A".repeat(MAX_TOKEN_CHARS + 1))), "token too long");
    assert_eq!(reason(decode(&format!("{token}="))), "token is not base64url");
    assert_eq!(reason(decode(&format!("+{}", &token[1..]))), "token is not base64url");
    assert_eq!(reason(decode("A")), "token is not base64url");
    assert_eq!(reason(decode("AA")), "token has wrong length");
    assert_eq!(reason(decode(&format!("{token}AAAA"))), "token has wrong length");
    assert_eq!(reason(decode(&with(0, 0))), "unknown token format version");
    assert_eq!(reason(decode(&with(0, 3))), "unknown token format version");
    assert_eq!(reason(decode(&with(1, 0))), "bad key id in token");
    assert_eq!(reason(decode(&with(1, 17))), "bad key id in token");
    assert_eq!(reason(decode(&with(1, 3))), "token has wrong length");
    assert_eq!(reason(decode(&with(2, b'.'))), "bad key id in token");
    assert_eq!(reason(decode(&with(2 + KEY_ID.len(), 0))), "bad stream kind in token");
    assert_eq!(reason(decode(&with(2 + KEY_ID.len(), 3))), "bad stream kind in token");
    assert_eq!(reason(decode(&with(5, b'9'))), "bad token MAC", "a changed claim");
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
        prop_assert!(decode(&s).is_err());
    }

    #[test]
    fn random_base64url_never_panics_or_verifies(s in "[A-Za-z0-9_-]{0,260}") {
        prop_assert!(decode(&s).is_err());
    }

    #[test]
    fn any_claims_round_trip(
        ispb in any::<[u8; 8]>(),
        shard in any::<u32>(),
        stream in any::<u64>(),
        generation in any::<u64>(),
        issued_at_ms in any::<u64>(),
        replay in any::<bool>(),
    ) {
        let kind = if replay { StreamKind::Replay } else { StreamKind::Live };
        let claims = TokenClaims { ispb, shard, stream, generation, issued_at_ms, kind };
        prop_assert_eq!(decode(&encode(KEY_ID, &key(), &claims)), Ok(claims));
    }

    #[test]
    fn mutated_tokens_never_panic_or_verify(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let original = raw(&token());
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
        prop_assert!(decode(&encoded(&bytes)).is_err());
    }
}

/// The worked example of docs/tokens.md: these claims under this key give the token
/// the page shows, byte for byte.
#[test]
fn the_documented_example_is_what_the_codec_writes() {
    const DOC: &str = include_str!("../../../docs/tokens.md");
    let key = TokenKey::from_bytes(&[0x11; 32]);
    let claims = TokenClaims {
        ispb: *b"32074986",
        shard: 3,
        stream: 7,
        generation: 42,
        issued_at_ms: 1_796_292_000_000,
        kind: StreamKind::Live,
    };
    let token = encode("2026-12", &key, &claims);
    assert!(DOC.contains(&format!("`{token}`")), "docs/tokens.md does not show the example token {token}");
    let hex: String = raw(&token).iter().map(|b| format!("{b:02x}")).collect();
    assert!(DOC.contains(&hex[..hex.len() - 64]), "docs/tokens.md does not show the example bytes {hex}");
    assert_eq!(decode_and_verify(&token, |kid| (kid == "2026-12").then_some(&key)), Ok(claims));
}
