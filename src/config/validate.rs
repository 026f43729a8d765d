//! `ConfigFile::validate`: every field of the file checked, and every relation
//! between fields, into the typed `Config` of one node. Each section is taken apart
//! by destructuring, so a field added to the file without a check here does not
//! compile.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use storage::TenantSettings;

use super::file::{
    ClusterSection, ConfigFile, HttpSection, LimitsSection, NodeSection, StorageSection, TenantsSection, TokensSection,
};
use super::security::{validate_limits as validate_listeners, validate_security};
use super::{ClusterNode, Config, ConfigError, StartMode};

/// Replicas per shard when the file does not say (capped at the node count).
const DEFAULT_REPLICATION_FACTOR: u32 = 3;
/// Most shards a cluster may have.
const MAX_SHARDS: u32 = 1024;
/// Longest long-poll wait (SPEC.md §2.2).
const MAX_LONG_POLL_WAIT_MS: u64 = 25_000;
/// Most messages one producer request may carry (SPEC.md §3).
const MAX_MESSAGES_PER_REQUEST: usize = 100;
/// Longest dedupe window: 30 days.
const MAX_DEDUPE_WINDOW_SECS: u64 = 30 * 86_400;
/// Longest retention: 10 years.
const MAX_RETENTION_DAYS: u64 = 3_650;

/// Shorthand for a refused field.
fn bad(field: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::field(field, why)
}

impl ConfigFile {
    /// Checks every field and relation and builds the typed config of `node_id`.
    pub fn validate(self, node_id: u64, mode: StartMode) -> Result<Config, ConfigError> {
        let ConfigFile { cluster, nodes, storage, limits, tenants, tokens, http, listeners, tls, internal_auth, audit } =
            self;
        let nodes = validate_nodes(&nodes)?;
        let node = nodes
            .iter()
            .find(|n| n.id == node_id)
            .cloned()
            .ok_or_else(|| bad("--node-id", format!("node {node_id} is not in `nodes`")))?;
        let cluster = validate_cluster(cluster, nodes.len() as u32)?;
        let storage = validate_storage(storage)?;
        let limits = validate_limits(limits)?;
        let tenants = validate_tenants(tenants)?;
        let listener_limits = validate_listeners(listeners, limits.long_poll_wait)?;
        let security = validate_security(tls, internal_auth, node_id, node.internal_addr, nodes.len())?;
        let TokensSection { key_dir, active_key } = tokens;
        if !active_key.is_empty() && !token::is_valid_key_id(&active_key) {
            return Err(bad(
                "tokens.active_key",
                format!("{active_key:?} is not 1-{} characters of [A-Za-z0-9_-]", token::MAX_KEY_ID_LEN),
            ));
        }
        let HttpSection { strict_headers, problem_base } = http;
        if problem_base.is_empty() || !problem_base.bytes().all(|b| b.is_ascii_graphic() && !b"<>\"&".contains(&b)) {
            return Err(bad("http.problem_base", format!("{problem_base:?} is not a URI reference")));
        }
        let data_dir =
            if nodes.len() > 1 { storage.data_dir.join(format!("node-{node_id}")) } else { storage.data_dir.clone() };
        let audit = audit.validate(&data_dir)?;
        Ok(Config {
            node_id,
            region: node.region.clone(),
            public_addr: node.public_addr,
            internal_addr: node.internal_addr,
            peer_addr: node.peer_addr,
            nodes,
            shards: cluster.shards,
            replication_factor: cluster.replication_factor,
            heartbeat_ms: cluster.heartbeat_ms,
            election_timeout_ms: cluster.election_timeout_ms,
            data_dir,
            fsync: storage.fsync,
            background_write_bytes_per_sec: storage.background_write_bytes_per_sec,
            long_poll_wait: limits.long_poll_wait,
            stream_idle_timeout: limits.stream_idle_timeout,
            max_batch: limits.max_batch,
            max_replay_streams: limits.max_replay_streams,
            replay_lifetime: limits.replay_lifetime,
            max_message_bytes: limits.max_message_bytes,
            max_request_bytes: limits.max_request_bytes,
            max_messages_per_request: limits.max_messages_per_request,
            dedupe_window: limits.dedupe_window,
            auto_create_tenants: tenants.auto_create,
            tenant_defaults: tenants.defaults,
            key_dir: storage.data_dir.join(key_dir),
            active_key,
            strict_headers,
            problem_base,
            listener_limits,
            security,
            audit,
            join: mode == StartMode::Join,
        })
    }
}

fn validate_nodes(nodes: &[NodeSection]) -> Result<Vec<ClusterNode>, ConfigError> {
    if nodes.is_empty() {
        return Err(bad("nodes", "at least one node is required"));
    }
    let mut ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad("nodes.id", format!("node id {} appears twice", w[0])));
    }
    let addr = |field: &'static str, text: &str| {
        text.parse::<SocketAddr>().map_err(|e| bad(field, format!("{text:?} is not an address: {e}")))
    };
    nodes
        .iter()
        .map(|n| {
            let NodeSection { id, region, public_addr, internal_addr, peer_addr } = n;
            if region.is_empty() || region.len() > 64 || region.chars().any(char::is_whitespace) {
                return Err(bad("nodes.region", format!("{region:?} is not 1-64 characters without spaces")));
            }
            Ok(ClusterNode {
                id: *id,
                region: region.clone(),
                public_addr: addr("nodes.public_addr", public_addr)?,
                internal_addr: addr("nodes.internal_addr", internal_addr)?,
                peer_addr: addr("nodes.peer_addr", peer_addr)?,
            })
        })
        .collect()
}

struct ClusterChecked {
    shards: u32,
    replication_factor: u32,
    heartbeat_ms: u64,
    election_timeout_ms: (u64, u64),
}

fn validate_cluster(cluster: ClusterSection, node_count: u32) -> Result<ClusterChecked, ConfigError> {
    let ClusterSection { shards, replication_factor, heartbeat_ms, election_timeout_ms } = cluster;
    if shards == 0 || shards > MAX_SHARDS {
        return Err(bad("cluster.shards", format!("{shards} is not in 1..={MAX_SHARDS}")));
    }
    let [election_min, election_max] = election_timeout_ms;
    if heartbeat_ms == 0 || election_min < 2 * heartbeat_ms || election_max <= election_min {
        return Err(bad(
            "cluster.election_timeout_ms",
            format!("[{election_min}, {election_max}] must satisfy 2 x heartbeat_ms ({heartbeat_ms}) <= min < max"),
        ));
    }
    let replication_factor = match replication_factor {
        None => DEFAULT_REPLICATION_FACTOR.min(node_count),
        Some(0) => return Err(bad("cluster.replication_factor", "must be at least 1")),
        Some(n) if n > node_count => {
            return Err(bad(
                "cluster.replication_factor",
                format!("{n} is larger than the {node_count} configured nodes"),
            ));
        }
        Some(n) => n,
    };
    Ok(ClusterChecked { shards, replication_factor, heartbeat_ms, election_timeout_ms: (election_min, election_max) })
}

struct StorageChecked {
    data_dir: PathBuf,
    fsync: bool,
    background_write_bytes_per_sec: u64,
}

fn validate_storage(storage: StorageSection) -> Result<StorageChecked, ConfigError> {
    let StorageSection { data_dir, fsync, background_write_mb_per_sec } = storage;
    if data_dir.as_os_str().is_empty() {
        return Err(bad("storage.data_dir", "must not be empty"));
    }
    let background_write_bytes_per_sec = background_write_mb_per_sec.checked_mul(1 << 20).ok_or_else(|| {
        bad("storage.background_write_mb_per_sec", format!("{background_write_mb_per_sec} is too large"))
    })?;
    Ok(StorageChecked { data_dir, fsync, background_write_bytes_per_sec })
}

struct LimitsChecked {
    long_poll_wait: Duration,
    stream_idle_timeout: Duration,
    max_batch: u32,
    max_message_bytes: usize,
    max_request_bytes: usize,
    max_messages_per_request: usize,
    dedupe_window: Duration,
    max_replay_streams: u32,
    replay_lifetime: Duration,
}

fn validate_limits(limits: LimitsSection) -> Result<LimitsChecked, ConfigError> {
    let LimitsSection {
        long_poll_wait_ms,
        stream_idle_timeout_ms,
        max_batch,
        max_message_bytes,
        max_request_bytes,
        max_messages_per_request,
        dedupe_window_secs,
        max_replay_streams,
        replay_lifetime_secs,
    } = limits;
    if long_poll_wait_ms == 0 || long_poll_wait_ms > MAX_LONG_POLL_WAIT_MS {
        return Err(bad(
            "limits.long_poll_wait_ms",
            format!("{long_poll_wait_ms} is not in 1..={MAX_LONG_POLL_WAIT_MS}"),
        ));
    }
    if stream_idle_timeout_ms <= long_poll_wait_ms {
        return Err(bad(
            "limits.stream_idle_timeout_ms",
            format!("{stream_idle_timeout_ms} must be larger than long_poll_wait_ms ({long_poll_wait_ms})"),
        ));
    }
    if !(1..=10).contains(&max_batch) {
        return Err(bad("limits.max_batch", format!("{max_batch} is not in 1..=10")));
    }
    if max_message_bytes == 0 {
        return Err(bad("limits.max_message_bytes", "must be at least 1"));
    }
    if max_request_bytes < max_message_bytes {
        return Err(bad("limits.max_request_bytes", "must be at least max_message_bytes"));
    }
    if !(1..=MAX_MESSAGES_PER_REQUEST).contains(&max_messages_per_request) {
        return Err(bad(
            "limits.max_messages_per_request",
            format!("{max_messages_per_request} is not in 1..={MAX_MESSAGES_PER_REQUEST}"),
        ));
    }
    if !(1..=MAX_DEDUPE_WINDOW_SECS).contains(&dedupe_window_secs) {
        return Err(bad(
            "limits.dedupe_window_secs",
            format!("{dedupe_window_secs} is not in 1..={MAX_DEDUPE_WINDOW_SECS}"),
        ));
    }
    if !(1..=6).contains(&max_replay_streams) {
        return Err(bad("limits.max_replay_streams", format!("{max_replay_streams} is not in 1..=6")));
    }
    if !(60..=7 * 86_400).contains(&replay_lifetime_secs) {
        return Err(bad("limits.replay_lifetime_secs", format!("{replay_lifetime_secs} is not in 60..=604800")));
    }
    Ok(LimitsChecked {
        long_poll_wait: Duration::from_millis(long_poll_wait_ms),
        stream_idle_timeout: Duration::from_millis(stream_idle_timeout_ms),
        max_batch,
        max_message_bytes,
        max_request_bytes,
        max_messages_per_request,
        dedupe_window: Duration::from_secs(dedupe_window_secs),
        max_replay_streams,
        replay_lifetime: Duration::from_secs(replay_lifetime_secs),
    })
}

struct TenantsChecked {
    auto_create: bool,
    defaults: TenantSettings,
}

fn validate_tenants(tenants: TenantsSection) -> Result<TenantsChecked, ConfigError> {
    let TenantsSection { auto_create, max_streams, max_backlog, retention_days, rate_per_sec, rate_burst } = tenants;
    if rate_per_sec == 0 {
        return Err(bad("tenants.rate_per_sec", "must be at least 1"));
    }
    if rate_burst == 0 {
        return Err(bad("tenants.rate_burst", "must be at least 1"));
    }
    if !(1..=6).contains(&max_streams) {
        return Err(bad("tenants.max_streams", format!("{max_streams} is not in 1..=6")));
    }
    if max_backlog == 0 {
        return Err(bad("tenants.max_backlog", "must be at least 1"));
    }
    if !(1..=MAX_RETENTION_DAYS).contains(&retention_days) {
        return Err(bad("tenants.retention_days", format!("{retention_days} is not in 1..={MAX_RETENTION_DAYS}")));
    }
    let defaults = TenantSettings {
        max_streams,
        max_backlog,
        retention_secs: retention_days * 86_400,
        rate_per_sec,
        rate_burst,
        ..TenantSettings::default()
    };
    Ok(TenantsChecked { auto_create, defaults })
}
