//! Any input as a `PI-Pull-Next` token: verifying never panics, and what verifies is
//! exactly what its claims encode to (`token::fuzzing::check_verify`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static RING: OnceLock<token::KeyRing> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    token::fuzzing::check_verify(RING.get_or_init(token::fuzzing::fuzz_ring), data);
});
