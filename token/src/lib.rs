//! `pixstream-token` (imported as `token`): `PI-Pull-Next` tokens (SPEC.md §2.5).
//! A token is a cursor the cluster hands a client and later takes back; only the
//! cluster that issued it verifies it, so it is authenticated with HMAC-SHA256 under
//! a cluster-wide secret key rather than signed. This crate does file I/O only to
//! load key files and knows nothing of RocksDB, tokio or HTTP, so a fuzz target can
//! link it alone.
//!
//! Layout:
//! - `claims`  — `TokenClaims`, what a token asserts (ISPB, shard, stream, …).
//! - `codec`   — the version-2 wire form: layout, base64url, the MAC check
//!   (`decode_and_verify`), `InvalidToken`.
//! - `key`     — `TokenKey`, one 32-byte HMAC-SHA256 secret.
//! - `keyring` — `KeyRing`: one active key plus verify-only retired keys, by key id.
//! - `key_dir` — the key directory: `<kid>.key` / `<kid>.retired` files, their
//!   permissions, the generated development key, `KeyNotice`.
//! - `error`   — `KeyError`, a key directory or file that cannot be used.
//! - `fuzzing` — the property the `token_decode` fuzz target checks (and its corpus
//!   replay).
//! - `testing` — helpers of the unit tests: claims to issue, key files to write.
//!
//! The path a token travels in is built by `wire::paths::pull_next_path`.

mod claims;
mod codec;
mod error;
pub mod fuzzing;
mod key;
mod key_dir;
mod keyring;
#[cfg(test)]
mod testing;

pub use claims::{StreamKind, TokenClaims};
pub use codec::{FORMAT_VERSION, InvalidToken, MAX_KEY_ID_LEN, MAX_TOKEN_CHARS, decode_and_verify, is_valid_key_id};
pub use error::KeyError;
pub use key::TokenKey;
pub use key_dir::KeyNotice;
pub use keyring::{DEV_KEY_ID, KeyRing};
