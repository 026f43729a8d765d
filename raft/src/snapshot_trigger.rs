//! Snapshots by log size. Besides openraft's `LogsSinceLast` policy (a snapshot every
//! `snapshot_logs_since_last` entries), each shard snapshots once the log it appended
//! since its last snapshot holds more bytes than that snapshot (and at least
//! `MIN_LOG_BYTES`). The Raft log carries every append's bodies until it is purged
//! behind a snapshot, so without this a shard with few, large entries kept its whole
//! traffic in the log: the log never outgrows the state it would rebuild, and with a
//! short retention the disk stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::snapshot_dir::SnapshotDir;
use crate::types::Raft;

/// Log bytes since the last snapshot below which no size-triggered snapshot is taken.
pub(crate) const MIN_LOG_BYTES: u64 = 8 << 20;
/// How often the log size is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Whether `log_bytes_since` bytes appended since the last snapshot, of
/// `snapshot_bytes`, call for a new one.
pub(crate) fn snapshot_due(log_bytes_since: u64, snapshot_bytes: u64) -> bool {
    log_bytes_since > MIN_LOG_BYTES.max(snapshot_bytes)
}

/// Watches `shard`'s log size until `cancel` and asks `raft` for a snapshot when due.
pub(crate) fn spawn(
    shard: u32,
    raft: Raft,
    appended: Arc<AtomicU64>,
    snapshots: SnapshotDir,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECK_EVERY);
        let mut mark = appended.load(Ordering::Relaxed);
        let mut seen = snapshots.current().map(|m| m.snapshot_id);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = cancel.cancelled() => return,
            }
            let current = snapshots.current();
            let current_id = current.as_ref().map(|m| m.snapshot_id.clone());
            if current_id != seen {
                // A snapshot was made (by either policy): count from it.
                seen = current_id;
                mark = appended.load(Ordering::Relaxed);
                continue;
            }
            let since = appended.load(Ordering::Relaxed).saturating_sub(mark);
            let snapshot_bytes = match &current {
                Some(meta) => tokio::fs::metadata(snapshots.data_path(&meta.snapshot_id)).await.map_or(0, |m| m.len()),
                None => 0,
            };
            if snapshot_due(since, snapshot_bytes) {
                tracing::info!(
                    shard,
                    log_bytes = since,
                    snapshot_bytes,
                    "the log outgrew the last snapshot: snapshotting"
                );
                if raft.trigger().snapshot().await.is_err() {
                    return;
                }
                mark = appended.load(Ordering::Relaxed);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_once_the_log_outgrows_the_last_one_and_the_floor() {
        assert!(!snapshot_due(MIN_LOG_BYTES, 0), "not below the floor");
        assert!(snapshot_due(MIN_LOG_BYTES + 1, 0));
        assert!(!snapshot_due(MIN_LOG_BYTES + 1, 1 << 30), "a large state is not re-dumped for a small log");
        assert!(snapshot_due((1 << 30) + 1, 1 << 30), "the log never holds more than the state");
    }
}
