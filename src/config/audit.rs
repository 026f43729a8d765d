//! `[audit]`: the audit chain (SPEC.md §6) — on or off for the cluster, the node's
//! checkpoint signing key, how often the leader seals, how long records are kept.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[audit]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Commands leave audit records. The same on every node of a cluster.
    pub enabled: bool,
    /// Folder of this node's checkpoint signing key: one `<kid>.key` (PKCS#8 PEM
    /// Ed25519, mode 0600) beside its `<kid>.pub`; generated as `node<id>-1` when
    /// empty. Relative paths are under the node's data dir.
    pub key_dir: PathBuf,
    /// How often the leader of a shard seals each chain that grew.
    pub checkpoint_interval_secs: u64,
    /// Records older than this are deleted (0: kept forever). Independent of how
    /// long messages are kept.
    pub retention_days: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: true,
            key_dir: PathBuf::from("audit-keys"),
            checkpoint_interval_secs: 60,
            retention_days: 400,
        }
    }
}

/// The validated `[audit]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    pub enabled: bool,
    pub key_dir: PathBuf,
    pub checkpoint_interval: Duration,
    /// `None`: records are kept forever.
    pub retention: Option<Duration>,
}

impl AuditSection {
    /// Checks the section; `data_dir` is the node's data folder.
    pub fn validate(self, data_dir: &std::path::Path) -> Result<AuditConfig, ConfigError> {
        let AuditSection { enabled, key_dir, checkpoint_interval_secs, retention_days } = self;
        if !(1..=86_400).contains(&checkpoint_interval_secs) {
            return Err(ConfigError::field("audit.checkpoint_interval_secs", "must be 1 to 86400 seconds"));
        }
        if retention_days > 36_500 {
            return Err(ConfigError::field("audit.retention_days", "must be at most 36500 days (0 keeps forever)"));
        }
        Ok(AuditConfig {
            enabled,
            key_dir: data_dir.join(key_dir),
            checkpoint_interval: Duration::from_secs(checkpoint_interval_secs),
            retention: (retention_days > 0).then(|| Duration::from_secs(retention_days * 86_400)),
        })
    }
}
