//! Who may do what, from two files the operator keeps (reloaded on SIGHUP; a file
//! that fails to load keeps the rules in use and says so in the log):
//! - `clients` — the public listener's mapping of client certificates (SHA-256
//!   fingerprint, subject CN or SAN) to the ISPBs each may read;
//! - `credentials` — the internal listener's bearer tokens (stored as SHA-256
//!   hashes) and client certificates, each with its roles (`producer`, `operator`,
//!   `auditor`).
//!
//! Beside them, `certificate` (`ClientCertificate`: what rules can name of a verified
//! client certificate) and `rule` (`CertificateRule`: how a file names one). The
//! rules are consulted per request, so a change takes effect on open keep-alive
//! connections too. `AccessError` names the file and the entry, never a secret.

mod certificate;
mod clients;
mod credentials;
mod rule;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use certificate::{ClientCertificate, sha256_hex};
pub use clients::ClientRules;
pub use credentials::{Credentials, Principal, Role};
pub use rule::CertificateRule;

use crate::config::SecurityConfig;

/// An access file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Syntax { path: PathBuf, source: toml::de::Error },
    #[error("{}: entry {entry:?}: {why}", path.display())]
    BadEntry { path: PathBuf, entry: String, why: String },
}

/// The access rules in use, replaceable while the node serves.
#[derive(Debug)]
pub struct Access {
    clients_file: Option<PathBuf>,
    credentials_file: Option<PathBuf>,
    clients: ArcSwap<ClientRules>,
    credentials: ArcSwap<Credentials>,
}

impl Access {
    /// Loads the files `security` names (none: no rules, nothing is checked).
    pub fn load(security: &SecurityConfig) -> Result<Access, AccessError> {
        let clients = match &security.clients_file {
            Some(path) => ClientRules::load(path)?,
            None => ClientRules::default(),
        };
        let credentials = match &security.credentials_file {
            Some(path) => Credentials::load(path)?,
            None => Credentials::default(),
        };
        Ok(Access {
            clients_file: security.clients_file.clone(),
            credentials_file: security.credentials_file.clone(),
            clients: ArcSwap::from_pointee(clients),
            credentials: ArcSwap::from_pointee(credentials),
        })
    }

    /// Re-reads both files; each keeps its old rules when its new file fails.
    pub fn reload(&self) -> Result<(), AccessError> {
        let clients = self.clients_file.as_deref().map(ClientRules::load).transpose();
        let credentials = self.credentials_file.as_deref().map(Credentials::load).transpose();
        if let Ok(Some(rules)) = &clients {
            self.clients.store(Arc::new(rules.clone()));
        }
        if let Ok(Some(rules)) = &credentials {
            self.credentials.store(Arc::new(rules.clone()));
        }
        clients.and(credentials).map(|_| ())
    }

    /// The public listener's rules in use.
    pub fn clients(&self) -> Arc<ClientRules> {
        self.clients.load_full()
    }

    /// The internal listener's credentials in use.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials.load_full()
    }
}

/// Reads and parses one TOML access file.
fn read_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, AccessError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| AccessError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|source| AccessError::Syntax { path: path.to_path_buf(), source })
}
