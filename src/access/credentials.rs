//! The internal listener's credentials: bearer tokens, stored as SHA-256 hashes, and
//! client certificates, each with its roles.
//!
//! ```toml
//! [[token]]
//! name = "settlement-upstream"
//! sha256 = "…"                    # `printf %s "$TOKEN" | sha256sum`
//! roles = ["producer"]
//!
//! [[certificate]]
//! name = "ops-alice"
//! subject_cn = "ops-alice"        # or fingerprint = "…", or san = "…"
//! roles = ["operator", "auditor"]
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::certificate::ClientCertificate;
use super::rule::{CertificateMatch, CertificateRule};
use super::{AccessError, read_toml};

/// What an internal-API caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Appends messages.
    Producer,
    /// Administers tenants, streams, cursors and the cluster.
    Operator,
    /// Reads and verifies the audit log and the metrics.
    Auditor,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

/// An authenticated internal-API caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The entry's name: the actor of logs and audit records.
    pub name: String,
    /// `token` or `certificate`: how the caller proved who it is.
    pub via: &'static str,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    certificate: Vec<CertificateEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    roles: Vec<Role>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateEntry {
    name: String,
    #[serde(flatten)]
    certificate: CertificateMatch,
    roles: Vec<Role>,
}

/// The credentials in use.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// SHA-256 of a token → its holder.
    tokens: HashMap<[u8; 32], Principal>,
    certificates: Vec<(CertificateRule, Principal)>,
}

impl Credentials {
    /// Reads a credentials file; every entry is checked.
    pub fn load(path: &Path) -> Result<Credentials, AccessError> {
        let file: CredentialsFile = read_toml(path)?;
        let bad = |entry: &str, why: &str| AccessError::BadEntry {
            path: path.to_path_buf(),
            entry: entry.to_owned(),
            why: why.to_owned(),
        };
        let mut credentials = Credentials::default();
        for TokenEntry { name, sha256, roles } in file.token {
            check_entry(&name, &roles).map_err(|why| bad(&name, why))?;
            let hash = parse_sha256(&sha256).ok_or_else(|| bad(&name, "sha256 is not 64 hex digits"))?;
            let principal = Principal { name: name.clone(), via: "token", roles };
            if credentials.tokens.insert(hash, principal).is_some() {
                return Err(bad(&name, "the same token hash appears twice"));
            }
        }
        for CertificateEntry { name, certificate, roles } in file.certificate {
            check_entry(&name, &roles).map_err(|why| bad(&name, why))?;
            let rule = certificate.rule().map_err(|why| bad(&name, why))?;
            credentials.certificates.push((rule, Principal { name, via: "certificate", roles }));
        }
        Ok(credentials)
    }

    /// The holder of bearer token `token`, if any.
    pub fn by_token(&self, token: &str) -> Option<&Principal> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.get(&hash)
    }

    /// The entry naming `certificate`, if any.
    pub fn by_certificate(&self, certificate: &ClientCertificate) -> Option<&Principal> {
        self.certificates.iter().find(|(rule, _)| rule.matches(certificate)).map(|(_, principal)| principal)
    }
}

fn check_entry(name: &str, roles: &[Role]) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("name must be 1-64 visible ASCII characters");
    }
    if roles.is_empty() {
        return Err("roles must name at least one of producer, operator, auditor");
    }
    Ok(())
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::sha256_hex;

    fn load(text: &str) -> Result<Credentials, AccessError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, text).expect("write");
        Credentials::load(&path)
    }

    #[test]
    fn tokens_are_found_by_their_hash_only() {
        let text =
            format!("[[token]]\nname = \"up\"\nsha256 = \"{}\"\nroles = [\"producer\"]\n", sha256_hex(b"secret"));
        let credentials = load(&text).expect("valid");
        let principal = credentials.by_token("secret").expect("known token");
        assert_eq!((principal.name.as_str(), principal.via), ("up", "token"));
        assert!(principal.has(Role::Producer) && !principal.has(Role::Operator));
        assert!(credentials.by_token("secret2").is_none());
        assert!(credentials.by_token(&sha256_hex(b"secret")).is_none(), "the hash itself is no token");
    }

    #[test]
    fn bad_entries_are_refused_naming_the_entry_never_the_secret() {
        let refused = [
            ("[[token]]\nname = \"a\"\nsha256 = \"abc\"\nroles = [\"producer\"]\n", "sha256"),
            ("[[token]]\nname = \"a\"\nsha256 = \"abc\"\nroles = []\n", "roles"),
            ("[[token]]\nname = \"a\"\nsha256 = \"abc\"\nroles = [\"root\"]\n", "root"),
            ("[[certificate]]\nname = \"c\"\nroles = [\"operator\"]\n", "names no certificate"),
            ("[[certificate]]\nname = \"c\"\nsubject_cn = \"x\"\nsan = \"y\"\nroles = [\"operator\"]\n", "exactly one"),
        ];
        for (text, why) in refused {
            let error = load(text).expect_err(text).to_string();
            assert!(error.contains(why), "{text}: {error}");
        }
        let twice = format!(
            "[[token]]\nname = \"a\"\nsha256 = \"{0}\"\nroles = [\"producer\"]\n[[token]]\nname = \"b\"\nsha256 = \"{0}\"\nroles = [\"auditor\"]\n",
            sha256_hex(b"t")
        );
        assert!(load(&twice).expect_err("duplicate").to_string().contains("twice"));
    }
}
