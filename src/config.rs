//! Configuration in two steps: `ConfigFile`, a serde mirror of `cluster.toml` that
//! refuses unknown fields, and `Config`, the validated, typed form the node runs
//! with. `Config::embedded` is the no-config default: one node on 127.0.0.1, data
//! in `./data`, dev keys generated on first start, plain HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use storage::TenantSettings;

use crate::error::ApiError;

/// Replicas per shard when the file does not say (capped at the node count).
const DEFAULT_REPLICATION_FACTOR: u32 = 3;

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
}

impl Default for TenantsSection {
    fn default() -> Self {
        let d = TenantSettings::default();
        TenantsSection {
            auto_create: true,
            max_streams: d.max_streams,
            max_backlog: d.max_backlog,
            retention_days: d.retention_secs / 86_400,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    /// Folder of `<kid>.key` (signing) and `<kid>.pub` (verify-only) files; relative
    /// paths are under the data dir. Every node must hold the same files.
    pub key_dir: PathBuf,
    /// Key id that signs new tokens; empty = generate/pick a dev key (embedded only).
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
        HttpSection { strict_headers: false, problem_base: crate::error::DEFAULT_PROBLEM_BASE.to_owned() }
    }
}

/// One node of the cluster as every node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: u64,
    pub region: String,
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    pub peer_addr: SocketAddr,
}

/// The validated configuration of one node.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: u64,
    /// Every node of the cluster, this one included, in file order.
    pub nodes: Vec<ClusterNode>,
    pub region: String,
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub shards: u32,
    pub replication_factor: u32,
    pub heartbeat_ms: u64,
    /// `(min, max)` election timeout of every shard group.
    pub election_timeout_ms: (u64, u64),
    pub data_dir: PathBuf,
    pub fsync: bool,
    /// Bound of RocksDB's background writes in bytes per second (0: unbounded).
    pub background_write_bytes_per_sec: u64,
    pub long_poll_wait: Duration,
    pub stream_idle_timeout: Duration,
    pub max_batch: u32,
    pub max_message_bytes: usize,
    pub max_request_bytes: usize,
    pub max_messages_per_request: usize,
    pub dedupe_window: Duration,
    pub auto_create_tenants: bool,
    pub tenant_defaults: TenantSettings,
    pub key_dir: PathBuf,
    pub active_key: String,
    pub strict_headers: bool,
    pub problem_base: String,
    /// This node joins a running cluster (`serve --join`): it bootstraps no shard and
    /// hosts every shard, so that the shards' leaders can add it. Not in the file.
    pub join: bool,
}

impl Config {
    /// The embedded default: one node, `./data`, plain HTTP on 127.0.0.1:8080 (public)
    /// and 127.0.0.1:8081 (internal).
    pub fn embedded(data_dir: &Path, public_addr: SocketAddr, internal_addr: SocketAddr) -> Config {
        let file = ConfigFile {
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
        };
        file.validate(1).expect("the embedded default is a valid configuration")
    }

    /// Reads and validates `path` for node `node_id`.
    pub fn load(path: &Path, node_id: u64) -> Result<Config, ApiError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ApiError::Startup(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, node_id)
    }

    /// Parses and validates configuration text for node `node_id`.
    pub fn parse(text: &str, node_id: u64) -> Result<Config, ApiError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ApiError::Startup(format!("config: {e}")))?;
        file.validate(node_id)
    }

    /// The tenant settings auto-created tenants get, when auto-creation is on.
    pub fn auto_create(&self) -> Option<TenantSettings> {
        self.auto_create_tenants.then(|| self.tenant_defaults.clone())
    }

    /// Where RocksDB lives.
    pub fn db_dir(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    /// The cluster as the shard groups see it: nodes, regions, peer addresses.
    pub fn cluster_map(&self) -> raft::ClusterMap {
        raft::ClusterMap {
            nodes: self
                .nodes
                .iter()
                .map(|n| raft::MemberNode { id: n.id, region: n.region.clone(), peer_addr: n.peer_addr.to_string() })
                .collect(),
            shards: self.shards,
            replication_factor: self.replication_factor,
        }
    }

    /// Where shard snapshots live.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }
}

impl ConfigFile {
    /// Checks every relation between fields and builds the typed config of `node_id`.
    pub fn validate(self, node_id: u64) -> Result<Config, ApiError> {
        let bad = |field: &str, why: String| ApiError::Startup(format!("config field `{field}`: {why}"));
        if self.nodes.is_empty() {
            return Err(bad("nodes", "at least one node is required".into()));
        }
        let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad("nodes.id", format!("node id {} appears twice", w[0])));
        }
        let node = self
            .nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| bad("--node-id", format!("node {node_id} is not in `nodes`")))?;
        let addr = |field: &str, text: &str| {
            text.parse::<SocketAddr>().map_err(|e| bad(field, format!("{text:?} is not an address: {e}")))
        };
        let (c, l, t) = (&self.cluster, &self.limits, &self.tenants);
        if c.shards == 0 || c.shards > 1024 {
            return Err(bad("cluster.shards", format!("{} is not in 1..=1024", c.shards)));
        }
        let [election_min, election_max] = c.election_timeout_ms;
        if c.heartbeat_ms == 0 || election_min < 2 * c.heartbeat_ms || election_max <= election_min {
            return Err(bad(
                "cluster.election_timeout_ms",
                format!(
                    "[{election_min}, {election_max}] must satisfy 2 x heartbeat_ms ({}) <= min < max",
                    c.heartbeat_ms
                ),
            ));
        }
        let node_count = self.nodes.len() as u32;
        let replication_factor = match c.replication_factor {
            None => DEFAULT_REPLICATION_FACTOR.min(node_count),
            Some(0) => return Err(bad("cluster.replication_factor", "must be at least 1".into())),
            Some(n) if n > node_count => {
                return Err(bad(
                    "cluster.replication_factor",
                    format!("{n} is larger than the {node_count} configured nodes"),
                ));
            }
            Some(n) => n,
        };
        if l.long_poll_wait_ms == 0 || l.long_poll_wait_ms > 25_000 {
            return Err(bad("limits.long_poll_wait_ms", format!("{} is not in 1..=25000", l.long_poll_wait_ms)));
        }
        if l.stream_idle_timeout_ms <= l.long_poll_wait_ms {
            return Err(bad(
                "limits.stream_idle_timeout_ms",
                format!("{} must be larger than long_poll_wait_ms ({})", l.stream_idle_timeout_ms, l.long_poll_wait_ms),
            ));
        }
        if !(1..=10).contains(&l.max_batch) {
            return Err(bad("limits.max_batch", format!("{} is not in 1..=10", l.max_batch)));
        }
        if l.max_message_bytes == 0 || l.max_request_bytes < l.max_message_bytes {
            return Err(bad("limits.max_request_bytes", "must be at least max_message_bytes".into()));
        }
        if !(1..=6).contains(&t.max_streams) {
            return Err(bad("tenants.max_streams", format!("{} is not in 1..=6", t.max_streams)));
        }
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                Ok(ClusterNode {
                    id: n.id,
                    region: n.region.clone(),
                    public_addr: addr("nodes.public_addr", &n.public_addr)?,
                    internal_addr: addr("nodes.internal_addr", &n.internal_addr)?,
                    peer_addr: addr("nodes.peer_addr", &n.peer_addr)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let defaults = TenantSettings::default();
        Ok(Config {
            node_id,
            nodes,
            region: node.region.clone(),
            public_addr: addr("nodes.public_addr", &node.public_addr)?,
            internal_addr: addr("nodes.internal_addr", &node.internal_addr)?,
            peer_addr: addr("nodes.peer_addr", &node.peer_addr)?,
            shards: c.shards,
            replication_factor,
            heartbeat_ms: c.heartbeat_ms,
            election_timeout_ms: (c.election_timeout_ms[0], c.election_timeout_ms[1]),
            data_dir: if self.nodes.len() > 1 {
                self.storage.data_dir.join(format!("node-{node_id}"))
            } else {
                self.storage.data_dir.clone()
            },
            fsync: self.storage.fsync,
            background_write_bytes_per_sec: self.storage.background_write_mb_per_sec.saturating_mul(1 << 20),
            long_poll_wait: Duration::from_millis(l.long_poll_wait_ms),
            stream_idle_timeout: Duration::from_millis(l.stream_idle_timeout_ms),
            max_batch: l.max_batch,
            max_message_bytes: l.max_message_bytes,
            max_request_bytes: l.max_request_bytes,
            max_messages_per_request: l.max_messages_per_request,
            dedupe_window: Duration::from_secs(l.dedupe_window_secs),
            auto_create_tenants: t.auto_create,
            tenant_defaults: TenantSettings {
                max_streams: t.max_streams,
                max_backlog: t.max_backlog,
                retention_secs: t.retention_days * 86_400,
                ..defaults
            },
            key_dir: self.storage.data_dir.join(&self.tokens.key_dir),
            active_key: self.tokens.active_key.clone(),
            strict_headers: self.http.strict_headers,
            problem_base: self.http.problem_base.clone(),
            join: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_NODE: &str = r#"
        [[nodes]]
        id = 1
        public_addr = "127.0.0.1:8080"
        internal_addr = "127.0.0.1:8081"
        peer_addr = "127.0.0.1:8082"
    "#;

    fn error_of(text: &str) -> String {
        match Config::parse(text, 1) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let c = Config::parse(ONE_NODE, 1).expect("valid");
        assert_eq!(c.shards, 16);
        assert_eq!((c.heartbeat_ms, c.election_timeout_ms), (500, (1500, 3000)));
        assert_eq!(c.long_poll_wait, Duration::from_secs(5));
        assert_eq!(c.stream_idle_timeout, Duration::from_secs(15));
        assert_eq!(c.max_batch, 10);
        assert_eq!(c.tenant_defaults.max_streams, 6);
        assert!(c.auto_create_tenants && c.fsync && !c.strict_headers);
        assert_eq!(c.background_write_bytes_per_sec, 48 << 20);
        let unbounded = format!("{ONE_NODE}\n[storage]\nbackground_write_mb_per_sec = 0\n");
        assert_eq!(Config::parse(&unbounded, 1).expect("valid").background_write_bytes_per_sec, 0);
    }

    #[test]
    fn the_checked_in_cluster_example_is_valid_for_every_node() {
        let text = include_str!("../cluster.toml");
        for id in 1..=3 {
            let c = Config::parse(text, id).expect("cluster.toml is valid");
            assert_eq!(c.replication_factor, 3);
            assert_eq!(c.data_dir, PathBuf::from("./data").join(format!("node-{id}")));
            assert_eq!(c.key_dir, PathBuf::from("./data/keys"), "nodes on one machine share their keys");
        }
    }

    #[test]
    fn bad_relations_are_refused_naming_the_field() {
        let wait = format!("{ONE_NODE}\n[limits]\nlong_poll_wait_ms = 9000\nstream_idle_timeout_ms = 9000\n");
        assert!(error_of(&wait).contains("limits.stream_idle_timeout_ms"));
        let elections = format!("[cluster]\nheartbeat_ms = 500\nelection_timeout_ms = [800, 3000]\n{ONE_NODE}");
        assert!(error_of(&elections).contains("cluster.election_timeout_ms"), "min below two heartbeats");
        let reversed = format!("[cluster]\nelection_timeout_ms = [3000, 1500]\n{ONE_NODE}");
        assert!(error_of(&reversed).contains("cluster.election_timeout_ms"));
        let repl = format!("[cluster]\nreplication_factor = 3\n{ONE_NODE}");
        assert!(error_of(&repl).contains("cluster.replication_factor"));
        let dup = format!("{ONE_NODE}{ONE_NODE}");
        assert!(error_of(&dup).contains("appears twice"));
        assert!(error_of(&format!("{ONE_NODE}\n[limits]\nbogus = 1\n")).contains("bogus"));
        assert!(matches!(Config::parse(ONE_NODE, 7), Err(e) if e.to_string().contains("--node-id")));
    }
}
