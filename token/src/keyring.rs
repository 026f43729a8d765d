//! The key ring: one active key that signs new tokens plus verify-only keys, all
//! named by key id and loaded from a key directory (SPEC.md §2.5, `key_dir`). It
//! issues and verifies `PI-Pull-Next` tokens.
//!
//! Rotation: add `new.key` to every node and make it active (`tokens.active_key`),
//! rename `old.key` to `old.retired` (its tokens still verify, it never signs again),
//! and once its streams are gone delete it: its tokens are then refused.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::claims::TokenClaims;
use crate::codec::{self, InvalidToken};
use crate::error::KeyError;
use crate::key::TokenKey;
use crate::key_dir::{self, KeyNotice, Role};

/// Key id of the key `load_or_generate_dev` creates in a directory without a `.key`.
pub const DEV_KEY_ID: &str = "dev-1";

/// Signs new tokens with the active key and verifies tokens of every known key.
pub struct KeyRing {
    active_key_id: String,
    active: TokenKey,
    /// Every key that verifies, the active one included.
    keys: BTreeMap<String, TokenKey>,
    /// What loading found worth a warning.
    notices: Vec<KeyNotice>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_key_id", &self.active_key_id)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring holding only `key`, active under `key_id` (tests, tools, fuzzing).
    pub fn new(key_id: &str, key: TokenKey) -> Result<KeyRing, KeyError> {
        check_key_id(key_id)?;
        let keys = BTreeMap::from([(key_id.to_owned(), key.clone())]);
        Ok(KeyRing { active_key_id: key_id.to_owned(), active: key, keys, notices: Vec::new() })
    }

    /// Load every key file of `dir`; `active_key_id` must be a `.key` file.
    pub fn load_dir(dir: &Path, active_key_id: &str) -> Result<KeyRing, KeyError> {
        check_key_id(active_key_id)?;
        let listing = key_dir::list(dir)?;
        let mut keys = BTreeMap::new();
        let mut active = None;
        for file in listing.files {
            let key = key_dir::read_key(&file.path)?;
            if file.key_id == active_key_id {
                if file.role == Role::Retired {
                    return Err(KeyError::ActiveIsRetired { key_id: file.key_id, dir: dir.to_path_buf() });
                }
                active = Some(key.clone());
            }
            keys.insert(file.key_id, key);
        }
        let active =
            active.ok_or_else(|| KeyError::NoActiveKey { key_id: active_key_id.to_owned(), dir: dir.to_path_buf() })?;
        Ok(KeyRing { active_key_id: active_key_id.to_owned(), active, keys, notices: listing.notices })
    }

    /// The embedded default: create `dir` (mode 0700) if missing; when it holds no
    /// `.key` file, write a fresh `dev-1.key` (mode 0600, never overwriting one a
    /// concurrent start wrote); then load it with the greatest `.key` id active.
    pub fn load_or_generate_dev(dir: &Path) -> Result<KeyRing, KeyError> {
        key_dir::create_private_dir(dir)?;
        let signing = |listing: key_dir::Listing| {
            listing.files.into_iter().filter(|f| f.role == Role::Signing).map(|f| f.key_id).max()
        };
        let mut generated = None;
        if signing(key_dir::list(dir)?).is_none() {
            generated = key_dir::write_new_key(dir, DEV_KEY_ID)?;
        }
        let active = signing(key_dir::list(dir)?).ok_or_else(|| KeyError::NoKey { dir: dir.to_path_buf() })?;
        let mut ring = KeyRing::load_dir(dir, &active)?;
        ring.notices.extend(generated.map(|path| KeyNotice::GeneratedDevKey { path }));
        Ok(ring)
    }

    /// Authenticate `claims` with the active key. Deterministic: the same claims
    /// always give the same token (idempotent retries rely on it).
    pub fn issue(&self, claims: &TokenClaims) -> String {
        codec::encode(&self.active_key_id, &self.active, claims)
    }

    /// Decode a token and check its MAC under the key its key id names, active or
    /// retired. Any input is safe: a failure is an `InvalidToken`, never a panic.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, InvalidToken> {
        codec::decode_and_verify(token, |key_id| self.keys.get(key_id))
    }

    /// [`verify`](Self::verify), and reject a token issued for another ISPB.
    pub fn verify_for(&self, token: &str, ispb: &[u8; 8]) -> Result<TokenClaims, InvalidToken> {
        let claims = self.verify(token)?;
        if claims.ispb != *ispb {
            return Err(InvalidToken("token issued for another ISPB"));
        }
        Ok(claims)
    }

    /// Key id of the signing key.
    pub fn active_key_id(&self) -> &str {
        &self.active_key_id
    }

    /// Ids of every key that verifies, sorted, the active one included.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// What loading the key directory found worth a warning (ignored `.pub` files,
    /// a generated development key), for the caller to log.
    pub fn notices(&self) -> &[KeyNotice] {
        &self.notices
    }
}

fn check_key_id(key_id: &str) -> Result<(), KeyError> {
    if codec::is_valid_key_id(key_id) { Ok(()) } else { Err(KeyError::BadKeyId { key_id: key_id.to_owned() }) }
}

#[cfg(test)]
mod tests;
