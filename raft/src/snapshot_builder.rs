//! `SnapshotBuilder`: dumps one shard's state at a consistent point into a file.
//!
//! The point is fixed when the builder is made: a blocking thread opens a RocksDB
//! point-in-time view and signals it; until then the caller holds the machine's
//! lock, so the view and the recorded last applied log id agree (applies happen on
//! the same openraft task as this call, and under the machine's write lock). The
//! dump itself then runs while the shard goes on applying; `build_snapshot` awaits
//! it, makes the file the current snapshot and hands it to openraft.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::{Arc, mpsc};

use openraft::{RaftSnapshotBuilder, Snapshot, StorageError, StorageIOError};
use parking_lot::RwLock;
use storage::snapshot::ExportCount;
use storage::{Ispb, ShardMachine, Store};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::snapshot_dir::SnapshotDir;
use crate::types::{LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// A snapshot being dumped.
pub struct SnapshotBuilder {
    shard: u32,
    meta: SnapshotMeta,
    dir: SnapshotDir,
    dump: Option<JoinHandle<Result<ExportCount, Error>>>,
}

impl SnapshotBuilder {
    /// Fixes the snapshot point (the current state of `machine`, which has applied
    /// up to `applied`) and starts dumping it.
    pub(crate) fn start(
        store: Store,
        machine: &Arc<RwLock<ShardMachine>>,
        dir: SnapshotDir,
        applied: Option<LogId>,
        membership: StoredMembership,
    ) -> SnapshotBuilder {
        let (term, index) = applied.map(|l| (l.leader_id.term, l.index)).unwrap_or((0, 0));
        let snapshot_id = dir.new_id(term, index);
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
        let (part, data) = (dir.part_path(&meta.snapshot_id), dir.data_path(&meta.snapshot_id));
        let guard = machine.read();
        let shard = guard.shard();
        let ispbs: Vec<Ispb> = guard.records().map(|t| t.ispb).collect();
        let (taken_tx, taken_rx) = mpsc::channel::<()>();
        let dump = tokio::task::spawn_blocking(move || {
            let taken = move || {
                // The receiver waits below; it is gone only if the builder panicked.
                let _ = taken_tx.send(());
            };
            let result = dump(&store, &ispbs, taken, &part, &data);
            if result.is_err() {
                let _ = fs::remove_file(&part);
            }
            result
        });
        // Err means the dump failed before taking its view: `build_snapshot` reports it.
        let _ = taken_rx.recv();
        drop(guard);
        tracing::debug!(shard, snapshot = %meta.snapshot_id, last_log_id = ?applied, "snapshot point taken");
        SnapshotBuilder { shard, meta, dir, dump: Some(dump) }
    }

    fn error(&self, e: &Error) -> StorageError<u64> {
        tracing::error!(shard = self.shard, snapshot = %self.meta.snapshot_id, error = %e, "snapshot build failed");
        StorageIOError::write_snapshot(Some(self.meta.signature()), e).into()
    }
}

/// Writes the dump to `part`, syncs it and renames it to `data`.
fn dump(store: &Store, ispbs: &[Ispb], taken: impl FnOnce(), part: &Path, data: &Path) -> Result<ExportCount, Error> {
    let mut out = BufWriter::new(File::create(part)?);
    let count = storage::snapshot::export_shard(store, ispbs, taken, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(part, data)?;
    Ok(count)
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let Some(dump) = self.dump.take() else {
            return Err(self.error(&Error::Unavailable("snapshot already built by this builder".into())));
        };
        let count = match dump.await {
            Ok(Ok(count)) => count,
            Ok(Err(e)) => return Err(self.error(&e)),
            Err(e) => return Err(self.error(&Error::Io(io::Error::other(e)))),
        };
        let file = tokio::fs::File::open(self.dir.data_path(&self.meta.snapshot_id))
            .await
            .map_err(|e| self.error(&e.into()))?;
        let (dir, meta) = (self.dir.clone(), self.meta.clone());
        match tokio::task::spawn_blocking(move || dir.commit(&meta, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.error(&e)),
            Err(e) => return Err(self.error(&Error::Io(io::Error::other(e)))),
        }
        tracing::info!(
            shard = self.shard,
            snapshot = %self.meta.snapshot_id,
            records = count.records,
            ranges = count.ranges,
            "snapshot built"
        );
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(file) })
    }
}
