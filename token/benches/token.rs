//! Cost of `PI-Pull-Next` tokens: `KeyRing::issue` and `KeyRing::verify`, the two
//! operations every pull performs once each. Issuing pays layout + HMAC-SHA256 +
//! base64url (`issue`); verifying pays base64url + checks + HMAC-SHA256 and a
//! constant-time tag comparison, on a ring that has never seen the token
//! (`verify_first`: there is no cache, every verify is a first one) and with the ISPB
//! check (`verify_for`). A tampered token (`verify_tampered`) pays the same full check
//! before it is refused.
//!
//! Run: `cargo bench -p pixstream-token --bench token` (`-- --quick` for a short run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use token::{KeyRing, StreamKind, TokenClaims, TokenKey};

fn claims() -> TokenClaims {
    TokenClaims {
        ispb: *b"32074986",
        shard: 7,
        stream: 123_456,
        generation: 42,
        issued_at_ms: 1_750_000_000_000,
        kind: StreamKind::Live,
    }
}

fn tokens(c: &mut Criterion) {
    let Ok(ring) = KeyRing::new("bench-key-2026", TokenKey::from_bytes(&[9; 32])) else {
        panic!("bench key id is valid");
    };
    let claims = claims();
    let token = ring.issue(&claims);
    let mut tampered = token.clone().into_bytes();
    // A character inside the tag, not the last one (whose low bits are padding).
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let Ok(tampered) = String::from_utf8(tampered) else {
        panic!("token is ASCII");
    };
    assert!(ring.verify(&token).is_ok() && ring.verify(&tampered).is_err(), "bench inputs behave");

    let mut group = c.benchmark_group("token");
    group.bench_function("issue", |b| b.iter(|| ring.issue(black_box(&claims))));
    group.bench_function("verify_first", |b| b.iter(|| ring.verify(black_box(&token))));
    group.bench_function("verify_for", |b| b.iter(|| ring.verify_for(black_box(&token), black_box(b"32074986"))));
    group.bench_function("verify_tampered", |b| b.iter(|| ring.verify(black_box(&tampered))));
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
