//! `PI-Pull-Next` tokens (SPEC.md §2.5): what they claim (`claims`), their signed
//! base64url wire form (`codec`), the Ed25519 key ring that issues and verifies them
//! (`keyring`), the key errors (`error`), and the cache that recognises recently issued
//! or verified tokens without another signature check (`recent`). The path a token
//! is used in is built by `wire::paths::pull_next_path`.

mod claims;
mod codec;
mod error;
mod keyring;
mod recent;

pub use claims::{StreamKind, TokenClaims};
pub use codec::{FORMAT_VERSION, InvalidToken, MAX_KEY_ID_LEN, MAX_TOKEN_CHARS, is_valid_key_id};
pub use error::KeyError;
pub use keyring::{DEV_KEY_ID, KeyRing};
