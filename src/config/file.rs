//! `ConfigFile`: the serde mirror of `cluster.toml`, section by section, with the
//! documented defaults. Unknown fields are refused; relations between fields are
//! checked by `validate`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use storage::TenantSettings;

use super::audit::AuditSection;
use super::security::{InternalAuthSection, ListenersSection, TlsSection};

/// Default prefix of RFC 7807 problem types: the relative reference of SPEC.md §2.6.
pub const DEFAULT_PROBLEM_BASE: &str = "/api/v1/error/";

/// `cluster.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub cluster: ClusterSection,
    pub nodes: Vec<NodeSection>,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub tenants: TenantsSection,
    #[serde(default)]
    pub tokens: TokensSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub listeners: ListenersSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub internal_auth: InternalAuthSection,
    #[serde(default)]
    pub audit: AuditSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Raft groups; every ISPB belongs to exactly one. Fixed for the cluster's life.
    pub shards: u32,
    /// Replicas per shard. Unset: 3, capped at the node count; set explicitly, it
    /// must not exceed the node count.
    pub replication_factor: Option<u32>,
    /// Raft heartbeat interval.
    pub heartbeat_ms: u64,
    /// `[min, max]` of a follower's random election timeout. A failover takes about
    /// min + max: the leader lease (= max) refuses the first election after a leader
    /// dies, the second wins.
    pub election_timeout_ms: [u64; 2],
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection { shards: 16, replication_factor: None, heartbeat_ms: 500, election_timeout_ms: [1500, 3000] }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub id: u64,
    #[serde(default = "default_region")]
    pub region: String,
    /// PSP-facing pull API.
    pub public_addr: String,
    /// Producer, admin and metrics API.
    pub internal_addr: String,
    /// Raft traffic between nodes.
    pub peer_addr: String,
}

fn default_region() -> String {
    "default".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Where RocksDB, snapshots and keys live (per node: `{data_dir}/node-{id}` when
    /// several nodes share a config on one machine).
    pub data_dir: PathBuf,
    /// fsync the write-ahead log before acknowledging (production: true).
    pub fsync: bool,
    /// The rate RocksDB's flushes and compactions may write at, MiB/s (0: unbounded).
    pub background_write_mb_per_sec: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("./data"),
            fsync: true,
            background_write_mb_per_sec: storage::DEFAULT_BACKGROUND_WRITE_BYTES_PER_SEC >> 20,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// How long a pull waits for messages before answering 204 (≤ 25 s).
    pub long_poll_wait_ms: u64,
    /// A stream without requests for this long is closed (> long_poll_wait_ms).
    pub stream_idle_timeout_ms: u64,
    /// Messages per multipart response (ICOM: 10).
    pub max_batch: u32,
    /// Largest producer message.
    pub max_message_bytes: usize,
    /// Largest producer request body (all parts together).
    pub max_request_bytes: usize,
    /// Messages per producer request.
    pub max_messages_per_request: usize,
    /// Idempotency window of producer appends.
    pub dedupe_window_secs: u64,
    /// Compliance replay streams open at once per ISPB (beside its live streams).
    pub max_replay_streams: u32,
    /// How long a replay stream stays open after it is opened.
    pub replay_lifetime_secs: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            long_poll_wait_ms: 5_000,
            stream_idle_timeout_ms: 15_000,
            max_batch: 10,
            max_message_bytes: 1 << 20,
            max_request_bytes: 16 << 20,
            max_messages_per_request: 100,
            dedupe_window_secs: 24 * 3600,
            max_replay_streams: 2,
            replay_lifetime_secs: 3600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsSection {
    /// Create a tenant with default settings on its first append or pull.
    pub auto_create: bool,
    pub max_streams: u32,
    pub max_backlog: u64,
    pub retention_days: u64,
    /// Requests per second one ISPB may make (token bucket rate).
    pub rate_per_sec: u32,
    /// Token bucket size: the burst one ISPB may make at once.
    pub rate_burst: u32,
}

impl Default for TenantsSection {
    fn default() -> Self {
        let d = TenantSettings::default();
        TenantsSection {
            auto_create: true,
            max_streams: d.max_streams,
            max_backlog: d.max_backlog,
            retention_days: d.retention_secs / 86_400,
            rate_per_sec: d.rate_per_sec,
            rate_burst: d.rate_burst,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    /// Folder of `<kid>.key` (may sign, always verifies) and `<kid>.retired`
    /// (verify-only) files: 32 random bytes as 64 hex characters each, readable by
    /// the service user only (mode 0600). Relative paths are under the data dir.
    /// Every node must hold the same files.
    pub key_dir: PathBuf,
    /// Key id that signs new tokens; empty = the highest-id `.key` in the key folder,
    /// or a generated `dev-1` when there is none.
    pub active_key: String,
}

impl Default for TokensSection {
    fn default() -> Self {
        TokensSection { key_dir: PathBuf::from("keys"), active_key: String::new() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Refuse requests with headers outside the ICOM allow-list (400 invalidHeader).
    pub strict_headers: bool,
    /// Prefix of RFC 7807 problem `type` URIs.
    pub problem_base: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection { strict_headers: false, problem_base: DEFAULT_PROBLEM_BASE.to_owned() }
    }
}

impl ConfigFile {
    /// Makes the TLS and credential paths absolute against `base`, the folder of
    /// the configuration file.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.tls.resolve_paths(base);
        self.internal_auth.resolve_paths(base);
    }

    /// The embedded default as a file: one node with the given listeners, data in
    /// `data_dir`, every other setting at its default.
    pub fn embedded(data_dir: &Path, public_addr: SocketAddr, internal_addr: SocketAddr) -> ConfigFile {
        ConfigFile {
            cluster: ClusterSection::default(),
            nodes: vec![NodeSection {
                id: 1,
                region: default_region(),
                public_addr: public_addr.to_string(),
                internal_addr: internal_addr.to_string(),
                peer_addr: "127.0.0.1:0".to_owned(),
            }],
            storage: StorageSection { data_dir: data_dir.to_path_buf(), ..StorageSection::default() },
            limits: LimitsSection::default(),
            tenants: TenantsSection::default(),
            tokens: TokensSection::default(),
            http: HttpSection::default(),
            listeners: ListenersSection::default(),
            tls: TlsSection::default(),
            internal_auth: InternalAuthSection::default(),
            audit: AuditSection::default(),
        }
    }
}
