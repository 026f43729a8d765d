//! `PI-Pull-Next` tokens (SPEC.md §2.5): what they claim (`claims`), their signed
//! base64url wire form (`codec`) and the Ed25519 key ring that issues and verifies
//! them (`keyring`), their errors (`error`), the cache that recognises recently issued or verified tokens
//! without another signature check (`recent`), plus the pull path a token is used in.

mod claims;
mod codec;
mod error;
mod keyring;
mod recent;

pub use claims::{StreamKind, TokenClaims};
pub use error::{InvalidToken, KeyError};
pub use codec::{FORMAT_VERSION, MAX_KEY_ID_LEN, MAX_TOKEN_CHARS, is_valid_key_id};
pub use keyring::{DEV_KEY_ID, KeyRing};

/// The path a PSP GETs (or DELETEs) to continue a stream with `token`.
pub fn pull_next_path(ispb: &str, token: &str) -> String {
    format!("/api/v1/out/{ispb}/stream/{token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_next_path_is_the_stream_route() {
        assert_eq!(pull_next_path("32074986", "AbC-_1"), "/api/v1/out/32074986/stream/AbC-_1");
    }
}
