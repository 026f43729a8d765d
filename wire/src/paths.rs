//! Every route of the public (PSP) and internal (producer, peer, admin) HTTP API, in
//! one place: the templates the routers register (axum syntax, `{name}` captures) and
//! builders of the concrete paths clients request. A builder's output always matches
//! its template with the captures filled in.

/// `GET`: opens a stream of an ISPB and performs its first read (SPEC.md §2.1).
pub const STREAM_START: &str = "/api/v1/out/{ispb}/stream/start";
/// `GET` continues, `DELETE` closes a stream at `token` (the `PI-Pull-Next` path).
pub const STREAM_NEXT: &str = "/api/v1/out/{ispb}/stream/{token}";
/// `POST`: producers append one message or a `multipart/mixed` batch (SPEC.md §3).
pub const APPEND: &str = "/internal/v1/out/{ispb}/msgs";
/// `GET`: an ISPB's audit chain as JSON lines (records and checkpoints).
pub const AUDIT_EXPORT: &str = "/internal/v1/out/{ispb}/audit";
/// `POST`: seal an ISPB's audit chain now (a checkpoint of its newest record).
pub const AUDIT_SEAL: &str = "/internal/v1/out/{ispb}/audit/seal";
/// `POST`: the complete node list; moves shard replicas to it.
pub const CLUSTER_MEMBERS: &str = "/internal/v1/cluster/members";
/// `GET`: the cluster's own audit chain (membership changes, access events of
/// ISPBs without a tenant) as JSON lines.
pub const CLUSTER_AUDIT_EXPORT: &str = "/internal/v1/cluster/audit";
/// `POST`: seal the cluster's audit chain now.
pub const CLUSTER_AUDIT_SEAL: &str = "/internal/v1/cluster/audit/seal";
/// `GET`: every tenant of the shards the node hosts.
pub const TENANTS: &str = "/internal/v1/tenants";
/// `GET` shows, `PUT` creates or changes, `DELETE` deletes one tenant.
pub const TENANT: &str = "/internal/v1/tenants/{ispb}";
/// `DELETE`: force-closes one open stream of a tenant; its batch is redelivered.
pub const TENANT_STREAM: &str = "/internal/v1/tenants/{ispb}/streams/{stream}";
/// `POST`: moves a tenant's watermark back (redeliver from a seq) or forward (skip).
pub const TENANT_CURSOR: &str = "/internal/v1/tenants/{ispb}/cursor";
/// `POST`: writes a backup of the node that answers into a new directory on it.
pub const NODE_BACKUP: &str = "/internal/v1/node/backup";
/// `GET`: every shard's replicas, leader, term, indexes and replication lag.
pub const CLUSTER_STATUS: &str = "/internal/v1/cluster/status";
/// `GET`: one shard as its leader sees it (what `CLUSTER_STATUS` gathers).
pub const CLUSTER_SHARD: &str = "/internal/v1/cluster/shards/{shard}";
/// `POST`: moves a shard's leadership to another of its voters.
pub const CLUSTER_SHARD_LEADER: &str = "/internal/v1/cluster/shards/{shard}/leader";
/// `POST`: opens a compliance replay stream of a tenant.
pub const TENANT_REPLAYS: &str = "/internal/v1/tenants/{ispb}/replays";
/// Liveness: the process answers.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: storage is open and every local shard has a leader.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics (internal listener).
pub const METRICS: &str = "/metrics";

/// The path that opens a stream of `ispb` ([`STREAM_START`]).
pub fn stream_start_path(ispb: &str) -> String {
    format!("/api/v1/out/{ispb}/stream/start")
}

/// The path a PSP GETs (or DELETEs) to continue a stream with `token` ([`STREAM_NEXT`]).
pub fn pull_next_path(ispb: &str, token: &str) -> String {
    format!("/api/v1/out/{ispb}/stream/{token}")
}

/// The path producers post messages for `ispb` to ([`APPEND`]).
pub fn append_path(ispb: &str) -> String {
    format!("/internal/v1/out/{ispb}/msgs")
}

/// One tenant's admin path ([`TENANT`]).
pub fn tenant_path(ispb: &str) -> String {
    format!("/internal/v1/tenants/{ispb}")
}

/// The admin path of stream `stream` of `ispb` ([`TENANT_STREAM`]).
pub fn tenant_stream_path(ispb: &str, stream: u64) -> String {
    format!("/internal/v1/tenants/{ispb}/streams/{stream}")
}

/// The cursor path of `ispb` ([`TENANT_CURSOR`]).
pub fn tenant_cursor_path(ispb: &str) -> String {
    format!("/internal/v1/tenants/{ispb}/cursor")
}

/// One shard's status path ([`CLUSTER_SHARD`]).
pub fn cluster_shard_path(shard: u32) -> String {
    format!("/internal/v1/cluster/shards/{shard}")
}

/// The leader transfer path of `shard` ([`CLUSTER_SHARD_LEADER`]).
pub fn cluster_shard_leader_path(shard: u32) -> String {
    format!("/internal/v1/cluster/shards/{shard}/leader")
}

/// The replay path of `ispb` ([`TENANT_REPLAYS`]).
pub fn tenant_replays_path(ispb: &str) -> String {
    format!("/internal/v1/tenants/{ispb}/replays")
}

/// The audit export of `ispb` ([`AUDIT_EXPORT`]).
pub fn audit_export_path(ispb: &str) -> String {
    format!("/internal/v1/out/{ispb}/audit")
}

/// The seal-now path of `ispb`'s audit chain ([`AUDIT_SEAL`]).
pub fn audit_seal_path(ispb: &str) -> String {
    format!("/internal/v1/out/{ispb}/audit/seal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_their_templates() {
        let ispb = "32074986";
        assert_eq!(stream_start_path(ispb), STREAM_START.replace("{ispb}", ispb));
        assert_eq!(pull_next_path(ispb, "AbC-_1"), STREAM_NEXT.replace("{ispb}", ispb).replace("{token}", "AbC-_1"));
        assert_eq!(append_path(ispb), APPEND.replace("{ispb}", ispb));
        assert_eq!(audit_export_path(ispb), AUDIT_EXPORT.replace("{ispb}", ispb));
        assert_eq!(tenant_path(ispb), TENANT.replace("{ispb}", ispb));
        assert_eq!(tenant_cursor_path(ispb), TENANT_CURSOR.replace("{ispb}", ispb));
        assert_eq!(tenant_stream_path(ispb, 7), TENANT_STREAM.replace("{ispb}", ispb).replace("{stream}", "7"));
        assert_eq!(audit_seal_path(ispb), AUDIT_SEAL.replace("{ispb}", ispb));
        assert_eq!(tenant_replays_path(ispb), TENANT_REPLAYS.replace("{ispb}", ispb));
        assert_eq!(cluster_shard_path(3), CLUSTER_SHARD.replace("{shard}", "3"));
        assert_eq!(cluster_shard_leader_path(3), CLUSTER_SHARD_LEADER.replace("{shard}", "3"));
    }

    #[test]
    fn pull_next_path_is_the_stream_route() {
        assert_eq!(pull_next_path("32074986", "AbC-_1"), "/api/v1/out/32074986/stream/AbC-_1");
        assert_eq!(stream_start_path("32074986"), "/api/v1/out/32074986/stream/start");
        assert_eq!(append_path("99999A03"), "/internal/v1/out/99999A03/msgs");
    }
}
