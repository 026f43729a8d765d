//! Configuration in two steps: `ConfigFile` (`file`), a serde mirror of
//! `cluster.toml` that refuses unknown fields, and `Config`, the validated, typed
//! form the node runs with (`validate` checks every field and relation; nothing
//! changes a `Config` afterwards). `Config::embedded` is the no-config default: one
//! node on 127.0.0.1, data in `./data`, dev keys generated on first start, plain HTTP.
//!
//! Layout: `file` (the sections and their defaults), `validate` (file → `Config`),
//! `security` (TLS, listeners, internal auth), `audit` (`[audit]`), `error`
//! (`ConfigError`, naming the field).

mod audit;
mod error;
mod file;
#[cfg(test)]
mod reference_doc;
mod security;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use storage::TenantSettings;

pub use audit::{AuditConfig, AuditSection};
pub use error::ConfigError;
pub use file::{
    ClusterSection, ConfigFile, DEFAULT_PROBLEM_BASE, HttpSection, LimitsSection, NodeSection, StorageSection,
    TenantsSection, TokensSection,
};
pub use security::{
    ClientAuth, InternalAuthSection, ListenerLimits, ListenersSection, PeerTls, PeerTlsSection, SecurityConfig,
    ServerTls, ServerTlsSection, TlsSection,
};

/// How a node starts with its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Bootstrap the shards its placement assigns it (first start) or resume them.
    Bootstrap,
    /// Join a running cluster (`serve --join`): bootstrap no shard and host every
    /// shard, so that the shards' leaders can add it.
    Join,
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
    /// Compliance replay streams open at once per ISPB.
    pub max_replay_streams: u32,
    /// How long a replay stream stays open.
    pub replay_lifetime: Duration,
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
    /// Connection limits of every listener.
    pub listener_limits: ListenerLimits,
    /// TLS of the listeners and the access files.
    pub security: SecurityConfig,
    /// The audit chain: on or off, signing key, sealing interval, retention.
    pub audit: AuditConfig,
    /// This node joins a running cluster (`StartMode::Join`). Not in the file.
    pub join: bool,
}

impl Config {
    /// The embedded default: one node, `./data`, plain HTTP on 127.0.0.1:8080 (public)
    /// and 127.0.0.1:8081 (internal).
    pub fn embedded(data_dir: &Path, public_addr: SocketAddr, internal_addr: SocketAddr) -> Config {
        ConfigFile::embedded(data_dir, public_addr, internal_addr)
            .validate(1, StartMode::Bootstrap)
            .expect("the embedded default is a valid configuration")
    }

    /// Reads and validates `path` for node `node_id`.
    pub fn load(path: &Path, node_id: u64, mode: StartMode) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut file: ConfigFile = toml::from_str(&text)?;
        file.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        file.validate(node_id, mode)
    }

    /// Parses and validates configuration text for node `node_id`.
    pub fn parse(text: &str, node_id: u64, mode: StartMode) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text)?;
        file.validate(node_id, mode)
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
        match Config::parse(text, 1, StartMode::Bootstrap) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let c = Config::parse(ONE_NODE, 1, StartMode::Bootstrap).expect("valid");
        assert_eq!(c.shards, 16);
        assert_eq!((c.heartbeat_ms, c.election_timeout_ms), (500, (1500, 3000)));
        assert_eq!(c.long_poll_wait, Duration::from_secs(5));
        assert_eq!(c.stream_idle_timeout, Duration::from_secs(15));
        assert_eq!(c.max_batch, 10);
        assert_eq!(c.tenant_defaults.max_streams, 6);
        assert!(c.auto_create_tenants && c.fsync && !c.strict_headers);
        assert_eq!(c.background_write_bytes_per_sec, 48 << 20);
        let unbounded = format!("{ONE_NODE}\n[storage]\nbackground_write_mb_per_sec = 0\n");
        assert_eq!(
            Config::parse(&unbounded, 1, StartMode::Bootstrap).expect("valid").background_write_bytes_per_sec,
            0
        );
    }

    #[test]
    fn the_checked_in_cluster_example_is_valid_for_every_node() {
        let text = include_str!("../../cluster.toml");
        for id in 1..=3 {
            let c = Config::parse(text, id, StartMode::Bootstrap).expect("cluster.toml is valid");
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
        assert!(
            matches!(Config::parse(ONE_NODE, 7, StartMode::Bootstrap), Err(e) if e.to_string().contains("--node-id"))
        );
    }

    #[test]
    fn fields_without_relations_are_checked_too() {
        let refused = [
            ("[limits]\nmax_messages_per_request = 0\n", "limits.max_messages_per_request"),
            ("[limits]\nmax_messages_per_request = 101\n", "limits.max_messages_per_request"),
            ("[limits]\ndedupe_window_secs = 0\n", "limits.dedupe_window_secs"),
            ("[limits]\nmax_message_bytes = 0\n", "limits.max_message_bytes"),
            ("[tenants]\nmax_backlog = 0\n", "tenants.max_backlog"),
            ("[tenants]\nretention_days = 0\n", "tenants.retention_days"),
            ("[http]\nproblem_base = \"not a uri\"\n", "http.problem_base"),
            ("[http]\nproblem_base = \"\"\n", "http.problem_base"),
            ("[tokens]\nactive_key = \"../etc\"\n", "tokens.active_key"),
            ("[storage]\ndata_dir = \"\"\n", "storage.data_dir"),
        ];
        for (section, field) in refused {
            let text = format!("{ONE_NODE}\n{section}");
            assert!(error_of(&text).contains(field), "{section} must be refused naming {field}");
        }
        let blank_region = ONE_NODE.replace("id = 1", "id = 1\n        region = \"\"");
        assert!(error_of(&blank_region).contains("nodes.region"));
        let accepted = format!(
            "{ONE_NODE}\n[limits]\nmax_messages_per_request = 100\ndedupe_window_secs = 1\n[http]\nproblem_base = \"https://icom.example/api/v1/error/\"\n"
        );
        assert!(Config::parse(&accepted, 1, StartMode::Bootstrap).is_ok());
    }

    #[test]
    fn security_sections_are_checked_naming_the_field() {
        let public = "[tls.public]\ncert_file = \"n.pem\"\nkey_file = \"n.key\"\n";
        let refused = [
            (format!("{public}client_auth = \"required\"\nclients_file = \"c.toml\"\n"), "tls.public.client_ca_file"),
            (format!("{public}client_auth = \"required\"\nclient_ca_file = \"ca.pem\"\n"), "tls.public.clients_file"),
            (format!("{public}clients_file = \"c.toml\"\n"), "tls.public.clients_file"),
            ("[listeners]\nrequest_timeout_ms = 6000\n".to_owned(), "listeners.request_timeout_ms"),
            ("[listeners]\nmax_connections = 0\n".to_owned(), "listeners.max_connections"),
            ("[listeners]\nmax_header_bytes = 100\n".to_owned(), "listeners.max_header_bytes"),
            ("[listeners]\nmax_headers = 0\n".to_owned(), "listeners.max_headers"),
        ];
        for (section, field) in refused {
            let text = format!("{ONE_NODE}\n{section}");
            assert!(error_of(&text).contains(field), "{section} must be refused naming {field}");
        }
        let wide = ONE_NODE.replace("internal_addr = \"127.0.0.1:8081\"", "internal_addr = \"0.0.0.0:8081\"");
        assert!(error_of(&wide).contains("internal_auth.credentials_file"), "no open internal API beyond loopback");
        let trusted = format!("{wide}\n[internal_auth]\nallow_anonymous = true\n");
        assert!(Config::parse(&trusted, 1, StartMode::Bootstrap).is_ok(), "unless the operator says so");
        let text = include_str!("../../cluster.toml");
        let secured = format!("{text}\n[internal_auth]\ncredentials_file = \"credentials.toml\"\n");
        assert!(
            Config::parse(&secured, 1, StartMode::Bootstrap).err().is_some_and(|e| e.to_string().contains("tls.peer")),
            "a secured cluster needs peer TLS: forwarded requests are trusted"
        );
    }

    #[test]
    fn tls_paths_name_the_node_and_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "{ONE_NODE}\n[tls.public]\ncert_file = \"node-{{node_id}}.pem\"\nkey_file = \"/abs/node-{{node_id}}.key\"\n"
        );
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, text).expect("write");
        let c = Config::load(&path, 1, StartMode::Bootstrap).expect("valid");
        let tls = c.security.public_tls.expect("public TLS");
        assert_eq!(tls.cert_file, dir.path().join("node-1.pem"));
        assert_eq!(tls.key_file, PathBuf::from("/abs/node-1.key"));
        assert_eq!(tls.client_auth, ClientAuth::None);
    }

    #[test]
    fn join_mode_is_decided_at_validation() {
        assert!(!Config::parse(ONE_NODE, 1, StartMode::Bootstrap).expect("valid").join);
        assert!(Config::parse(ONE_NODE, 1, StartMode::Join).expect("valid").join);
    }
}
