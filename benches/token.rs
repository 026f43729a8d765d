//! Cost of `PI-Pull-Next` tokens: `KeyRing::issue` and `KeyRing::verify`, the two
//! operations every pull performs once each. New claims pay layout + Ed25519 sign +
//! base64url (`issue_first`, on a fresh ring each time); claims signed lately (a 204
//! or a retry answers with the cursor it was given) are looked up (`issue_repeated`).
//! A token the ring has not seen pays base64url + checks + Ed25519 `verify_strict`
//! (`verify_first_sight`, on a fresh ring each time); a token it issued or verified
//! lately is recognised by exact match (`verify_recognised`). Also a rejected tampered
//! token, which pays the full signature check.
//!
//! Run: `cargo bench --bench token`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use pixstream::token::{KeyRing, StreamKind, TokenClaims};

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

fn fresh_ring() -> KeyRing {
    let Ok(ring) = KeyRing::new("bench-key-2026", SigningKey::from_bytes(&[9; 32])) else {
        panic!("bench key id is valid");
    };
    ring
}

fn tokens(c: &mut Criterion) {
    let ring = fresh_ring();
    let claims = claims();
    let token = ring.issue(&claims);
    let mut tampered = token.clone().into_bytes();
    // A character inside the signature, not the last one (whose low bits are padding).
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let Ok(tampered) = String::from_utf8(tampered) else {
        panic!("token is ASCII");
    };

    let mut group = c.benchmark_group("token");
    group.bench_function("issue_first", |b| {
        b.iter_batched(fresh_ring, |fresh| fresh.issue(black_box(&claims)), BatchSize::SmallInput)
    });
    group.bench_function("issue_repeated", |b| b.iter(|| ring.issue(black_box(&claims))));
    group.bench_function("verify_first_sight", |b| {
        b.iter_batched(fresh_ring, |fresh| fresh.verify(black_box(&token)), BatchSize::SmallInput)
    });
    group.bench_function("verify_recognised", |b| b.iter(|| ring.verify(black_box(&token))));
    group.bench_function("verify_for", |b| b.iter(|| ring.verify_for(black_box(&token), black_box(b"32074986"))));
    group.bench_function("reject_tampered", |b| b.iter(|| ring.verify(black_box(&tampered))));
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
