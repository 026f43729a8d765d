//! `RequestContext`: who asks, for which ISPB, on which route, under which request
//! id — built once per request (by `api::attach` on the public and internal routers)
//! and handed to the domain services. It is the one place per-request policy
//! attaches: identity (client certificate or bearer token), authorization, rate
//! limits, audit records and metrics read it rather than each handler re-deriving
//! them. Plain data: no HTTP framework types.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;
use storage::Ispb;
use wire::paths;

use crate::access::{ClientCertificate, Principal, Role};

/// The routes of the public and internal API, as policy sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    StreamStart,
    StreamNext,
    StreamClose,
    Append,
    AuditExport,
    AuditSeal,
    ClusterMembers,
    TenantsList,
    TenantShow,
    TenantSet,
    TenantDelete,
    TenantStreamClose,
    TenantCursor,
    TenantReplay,
    NodeBackup,
    ClusterStatus,
    ClusterShard,
    ShardLeader,
    Healthz,
    Readyz,
    Metrics,
    /// A path the routers matched by a template this list does not know.
    Other,
}

impl Route {
    /// The route of a request matched by the template `matched`.
    pub fn of(method: &Method, matched: &str) -> Route {
        match matched {
            paths::STREAM_START => Route::StreamStart,
            paths::STREAM_NEXT if method == Method::DELETE => Route::StreamClose,
            paths::STREAM_NEXT => Route::StreamNext,
            paths::APPEND => Route::Append,
            paths::AUDIT_EXPORT | paths::CLUSTER_AUDIT_EXPORT => Route::AuditExport,
            paths::AUDIT_SEAL | paths::CLUSTER_AUDIT_SEAL => Route::AuditSeal,
            paths::CLUSTER_MEMBERS => Route::ClusterMembers,
            paths::TENANTS => Route::TenantsList,
            paths::TENANT if method == Method::PUT => Route::TenantSet,
            paths::TENANT if method == Method::DELETE => Route::TenantDelete,
            paths::TENANT => Route::TenantShow,
            paths::TENANT_STREAM => Route::TenantStreamClose,
            paths::TENANT_CURSOR => Route::TenantCursor,
            paths::TENANT_REPLAYS => Route::TenantReplay,
            paths::NODE_BACKUP => Route::NodeBackup,
            paths::CLUSTER_STATUS => Route::ClusterStatus,
            paths::CLUSTER_SHARD => Route::ClusterShard,
            paths::CLUSTER_SHARD_LEADER => Route::ShardLeader,
            paths::HEALTHZ => Route::Healthz,
            paths::READYZ => Route::Readyz,
            paths::METRICS => Route::Metrics,
            _ => Route::Other,
        }
    }

    /// Public routes that read an ISPB's stream: the client mapping applies.
    pub fn reads_a_stream(self) -> bool {
        matches!(self, Route::StreamStart | Route::StreamNext | Route::StreamClose)
    }

    /// Routes that act on one ISPB's or one shard's state: they are served by the
    /// shard's leader (forwarded there from any other node) and are new work a
    /// loaded node may shed. The node's own routes (health, metrics, status,
    /// membership, backup, the tenant list) are neither.
    pub fn serves_a_shard(self) -> bool {
        matches!(
            self,
            Route::StreamStart
                | Route::StreamNext
                | Route::StreamClose
                | Route::Append
                | Route::AuditExport
                | Route::AuditSeal
                | Route::TenantShow
                | Route::TenantSet
                | Route::TenantDelete
                | Route::TenantStreamClose
                | Route::TenantCursor
                | Route::TenantReplay
                | Route::ClusterShard
                | Route::ShardLeader
        )
    }

    /// The roles an internal route admits (any one of them will do); `None` for open
    /// routes (health) and for the public ones.
    pub fn allowed_roles(self) -> Option<&'static [Role]> {
        match self {
            Route::Append => Some(&[Role::Producer]),
            Route::ClusterMembers
            | Route::TenantSet
            | Route::TenantDelete
            | Route::TenantStreamClose
            | Route::TenantCursor
            | Route::TenantReplay
            | Route::NodeBackup
            | Route::ShardLeader => Some(&[Role::Operator]),
            Route::TenantsList | Route::TenantShow | Route::ClusterStatus | Route::ClusterShard => {
                Some(&[Role::Operator, Role::Auditor])
            }
            Route::Metrics | Route::AuditExport | Route::AuditSeal => Some(&[Role::Auditor]),
            Route::StreamStart
            | Route::StreamNext
            | Route::StreamClose
            | Route::Healthz
            | Route::Readyz
            | Route::Other => None,
        }
    }

    /// A stable name (logs, and later metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Route::StreamStart => "stream_start",
            Route::StreamNext => "stream_next",
            Route::StreamClose => "stream_close",
            Route::Append => "append",
            Route::AuditExport => "audit_export",
            Route::AuditSeal => "audit_seal",
            Route::ClusterMembers => "cluster_members",
            Route::TenantsList => "tenants_list",
            Route::TenantShow => "tenant_show",
            Route::TenantSet => "tenant_set",
            Route::TenantDelete => "tenant_delete",
            Route::TenantStreamClose => "tenant_stream_close",
            Route::TenantCursor => "tenant_cursor",
            Route::TenantReplay => "tenant_replay",
            Route::NodeBackup => "node_backup",
            Route::ClusterStatus => "cluster_status",
            Route::ClusterShard => "cluster_shard",
            Route::ShardLeader => "shard_leader",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

/// Who sent the request, as far as the listener could tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No credentials (plain HTTP listeners of the embedded default, or a client
    /// that sent none).
    Anonymous,
    /// A verified client certificate on the public listener; `client` is the name
    /// the client mapping gives it, when it knows it.
    Certificate { certificate: Arc<ClientCertificate>, client: Option<String> },
    /// An internal-API caller recognised by bearer token or client certificate.
    Principal(Principal),
    /// A bearer token no credential entry holds.
    UnknownToken,
    /// A request another node of the cluster authorized and forwarded; `actor` is
    /// how that node named the caller.
    Forwarded { actor: String },
}

impl Identity {
    /// How logs and audit records name the caller.
    pub fn actor(&self) -> String {
        match self {
            Identity::Anonymous => "anonymous".to_owned(),
            Identity::Certificate { client: Some(name), .. } => format!("client:{name}"),
            Identity::Certificate { certificate, client: None } => {
                format!("certificate:{}", certificate.display_name())
            }
            Identity::Principal(principal) => format!("{}:{}", principal.via, principal.name),
            Identity::UnknownToken => "unknown-token".to_owned(),
            Identity::Forwarded { actor } => actor.clone(),
        }
    }
}

/// Everything policy needs to know about one request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The client's `X-Request-Id` (or the one a forwarding node passed on), else
    /// generated here: `{node}-{counter}` in hex.
    pub request_id: String,
    pub route: Route,
    pub identity: Identity,
    /// The ISPB of the path, when it has a valid one (an invalid one is refused by
    /// the handler's extractor with `invalidIspb`).
    pub ispb: Option<Ispb>,
}

impl RequestContext {
    /// Who asked, as the audit record of the change names it.
    pub fn origin(&self) -> storage::audit::Origin {
        storage::audit::Origin { actor: self.identity.actor(), request_id: self.request_id.clone() }
    }
}

/// A request id unique on this node: `{node}-{counter}` in hex.
pub fn next_request_id(node_id: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{node_id:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_told_apart_by_template_and_method() {
        assert_eq!(Route::of(&Method::GET, paths::STREAM_START), Route::StreamStart);
        assert_eq!(Route::of(&Method::GET, paths::STREAM_NEXT), Route::StreamNext);
        assert_eq!(Route::of(&Method::DELETE, paths::STREAM_NEXT), Route::StreamClose);
        assert_eq!(Route::of(&Method::POST, paths::APPEND), Route::Append);
        assert_eq!(Route::of(&Method::GET, "/somewhere/else"), Route::Other);
    }

    #[test]
    fn request_ids_are_unique_per_node() {
        let (a, b) = (next_request_id(3), next_request_id(3));
        assert_ne!(a, b);
        assert!(a.starts_with("3-"));
    }
}
