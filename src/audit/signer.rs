//! The checkpoint signing key of a node: the one `<kid>.key` file (PKCS#8 PEM
//! Ed25519, mode 0600) in `[audit] key_dir`, beside its `<kid>.pub` (SPKI PEM) for
//! verifiers. An empty folder gets a fresh `node<id>-1` key. Rotation: put a new
//! `.key` in place of the old one and keep every `.pub` — old checkpoints stay
//! verifiable with theirs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use storage::Ispb;
use storage::audit::{Checkpoint, Digest};

use crate::error::Error;
use crate::private_file;

/// A node's checkpoint key.
pub struct AuditSigner {
    key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn key_error(path: &Path, why: impl Into<String>) -> Error {
    Error::AuditKey { path: path.to_path_buf(), why: why.into() }
}

impl AuditSigner {
    /// Loads the key of `dir`, generating `node<node_id>-1` when it holds none.
    pub fn load_or_generate(dir: &Path, node_id: u64) -> Result<AuditSigner, Error> {
        private_file::create_private_dir(dir).map_err(|e| key_error(dir, e.to_string()))?;
        let keys = files_with(dir, "key")?;
        match keys.as_slice() {
            [] => Self::generate(dir, &format!("node{node_id}-1")),
            [path] => Self::load(path),
            _ => Err(key_error(dir, "holds more than one .key file: keep only the active signing key")),
        }
    }

    fn load(path: &Path) -> Result<AuditSigner, Error> {
        if let Some(mode) = private_file::exposed_mode(path).map_err(|e| key_error(path, e.to_string()))? {
            return Err(key_error(path, format!("private key has mode {mode:03o}: chmod 600")));
        }
        let pem = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| key_error(path, "holds no PKCS#8 Ed25519 key"))?;
        let key_id = stem(path).ok_or_else(|| key_error(path, "a key file is named <kid>.key"))?;
        Ok(AuditSigner { key_id, key })
    }

    fn generate(dir: &Path, key_id: &str) -> Result<AuditSigner, Error> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let private = key.to_pkcs8_pem(Default::default()).map_err(|e| key_error(dir, e.to_string()))?;
        let public =
            key.verifying_key().to_public_key_pem(Default::default()).map_err(|e| key_error(dir, e.to_string()))?;
        let pub_path = dir.join(format!("{key_id}.pub"));
        std::fs::write(&pub_path, public).map_err(|e| key_error(&pub_path, e.to_string()))?;
        let key_path = dir.join(format!("{key_id}.key"));
        private_file::write_private(&key_path, private.as_bytes()).map_err(|e| key_error(&key_path, e.to_string()))?;
        tracing::info!(key = %key_path.display(), "generated the audit checkpoint key; give auditors {}", pub_path.display());
        Ok(AuditSigner { key_id: key_id.to_owned(), key })
    }

    /// The key id checkpoints name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs "record `upto` of `chain` has hash `hash`".
    pub fn sign(&self, chain: Ispb, upto: u64, hash: Digest, at_ms: u64) -> Checkpoint {
        Checkpoint::sign(chain, upto, hash, at_ms, &self.key_id, &self.key)
    }
}

/// The `<kid>.pub` files of `dirs`, by key id: the keys a verifier trusts.
pub fn read_public_keys(dirs: &[PathBuf]) -> Result<HashMap<String, VerifyingKey>, Error> {
    let mut keys = HashMap::new();
    for dir in dirs {
        for path in files_with(dir, "pub")? {
            let pem = std::fs::read_to_string(&path).map_err(|e| key_error(&path, e.to_string()))?;
            let key = VerifyingKey::from_public_key_pem(&pem)
                .map_err(|_| key_error(&path, "holds no SPKI PEM Ed25519 public key"))?;
            keys.insert(stem(&path).unwrap_or_default(), key);
        }
    }
    Ok(keys)
}

fn files_with(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| key_error(dir, e.to_string()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    out.sort();
    Ok(out)
}

fn stem(path: &Path) -> Option<String> {
    path.file_stem().and_then(|s| s.to_str()).filter(|s| token::is_valid_key_id(s)).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reloads_and_its_public_key_verifies_its_checkpoints() {
        let dir = tempfile::tempdir().expect("dir");
        let signer = AuditSigner::load_or_generate(dir.path(), 2).expect("generated");
        assert_eq!(signer.key_id(), "node2-1");
        let again = AuditSigner::load_or_generate(dir.path(), 2).expect("reloaded");
        let ispb = Ispb::parse("32074986").expect("valid");
        let checkpoint = again.sign(ispb, 4, Digest::of(b"r4"), 9);
        let keys = read_public_keys(&[dir.path().to_path_buf()]).expect("public keys");
        assert!(checkpoint.signed_by(&keys["node2-1"]));
    }

    #[test]
    fn an_exposed_or_second_key_refuses_to_start_naming_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        AuditSigner::load_or_generate(dir.path(), 1).expect("generated");
        let key = dir.path().join("node1-1.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = AuditSigner::load_or_generate(dir.path(), 1).expect_err("refused").to_string();
        assert!(error.contains("node1-1.key") && error.contains("644"), "{error}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::copy(&key, dir.path().join("other.key")).expect("copy");
        let error = AuditSigner::load_or_generate(dir.path(), 1).expect_err("refused").to_string();
        assert!(error.contains("more than one .key"), "{error}");
    }
}
