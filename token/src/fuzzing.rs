//! The property the `token_decode` fuzz target checks, shared with the replay of its
//! corpus in `token/tests/fuzz_corpus.rs`: verifying any input never panics, and a
//! token that verifies is exactly the token the ring issues for its claims (there is
//! one encoding per claims and key).

use crate::{KeyRing, TokenKey};

/// Key id of the fuzz ring.
pub const FUZZ_KEY_ID: &str = "fuzz-1";

/// The ring every fuzz input is verified with: one key of 32 bytes of 7.
pub fn fuzz_ring() -> KeyRing {
    KeyRing::new(FUZZ_KEY_ID, TokenKey::from_bytes(&[7; 32])).expect("the fuzz key id is valid")
}

/// Checks one fuzz input against `ring`; panics when the property does not hold.
pub fn check_verify(ring: &KeyRing, data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Ok(claims) = ring.verify(token) {
        assert_eq!(ring.issue(&claims), token, "an accepted token is the one its claims encode to");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_passes_and_garbage_is_refused_quietly() {
        let ring = fuzz_ring();
        let token = ring.issue(&crate::testing::claims());
        check_verify(&ring, token.as_bytes());
        check_verify(&ring, b"not a token");
        check_verify(&ring, &[0xff, 0xfe]);
    }
}
