//! Column family names. Every key in every family starts with a fixed-width prefix
//! (see `keys`), so one ISPB's or one shard's records are a contiguous range.

/// Message bodies and headers: `ISPB ‖ seq(BE u64)` → `MessageRecord`.
pub const MESSAGES: &str = "messages";
/// Tenant settings and delivery state: `ISPB` → `TenantRecord`.
pub const TENANTS: &str = "tenants";
/// Open streams: `ISPB ‖ stream id(BE u64)` → `StreamState`.
pub const STREAMS: &str = "streams";
/// Producer idempotency: `ISPB ‖ dedupe key` → `DedupeRecord`.
pub const DEDUPE: &str = "dedupe";
/// Audit chains: `ISPB ‖ 'r' ‖ seq(BE u64)` → `AuditRecord`, `ISPB ‖ 'c' ‖ seq` →
/// `Checkpoint`.
pub const AUDIT: &str = "audit";
/// Raft log entries: `shard(BE u32) ‖ index(BE u64)` → entry (owned by `raft`).
pub const RAFT_LOG: &str = "raft_log";
/// Raft and state-machine metadata: `shard(BE u32) ‖ tag` → value (owned by `raft`).
pub const RAFT_META: &str = "raft_meta";

/// Every family, in creation order.
pub const ALL: [&str; 7] = [MESSAGES, TENANTS, STREAMS, DEDUPE, AUDIT, RAFT_LOG, RAFT_META];

/// Families that hold shard state (as opposed to Raft's own log and metadata):
/// exactly what a snapshot carries.
pub const STATE: [&str; 5] = [MESSAGES, TENANTS, STREAMS, DEDUPE, AUDIT];

#[cfg(test)]
mod tests {
    /// docs/storage.md describes every family: a new one fails this test until it does.
    #[test]
    fn the_storage_page_describes_every_family() {
        const PAGE: &str = include_str!("../../docs/storage.md");
        for name in super::ALL {
            assert!(PAGE.contains(&format!("| `{name}` |")), "docs/storage.md has no row for the `{name}` family");
        }
    }
}
