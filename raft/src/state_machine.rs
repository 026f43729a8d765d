//! `StateMachine`: openraft's view of one shard's `storage::ShardMachine`.
//!
//! `apply` turns a run of committed entries into ONE RocksDB `WriteBatch`: the
//! commands of every normal entry, then the last applied log id and, when a
//! membership entry was among them, the membership. The
//! batch is written without fsync — the fsynced Raft log shares the write-ahead log
//! and replays anything lost — on the state machine's task (a memtable insert, no
//! thread hand-off), while the machine's write lock is held, so a reader
//! never sees in-memory state whose records are not yet in RocksDB. Readers are then
//! woken through the `ApplyObserver`.
//!
//! Snapshots are files managed by `SnapshotDir`; building one is `SnapshotBuilder`,
//! installing a received one `snapshot_install`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, OptionalSend, Snapshot, StorageError, StorageIOError};
use parking_lot::RwLock;
use rocksdb::WriteBatch;
use storage::{Ispb, ShardMachine, Store, Wake};

use crate::error::Error;
use crate::meta;
use crate::observer::ApplyObserver;
use crate::record_fetch::RecordSource;
use crate::snapshot_builder::SnapshotBuilder;
use crate::snapshot_dir::SnapshotDir;
use crate::types::{LogId, Response, SnapshotMeta, StoredMembership, TypeConfig};

/// One shard's state machine as openraft drives it.
pub struct StateMachine {
    shard: u32,
    store: Store,
    machine: Arc<RwLock<ShardMachine>>,
    observer: Arc<dyn ApplyObserver>,
    snapshots: SnapshotDir,
    /// Where a received snapshot's records this node lacks come from.
    records: Arc<dyn RecordSource>,
    /// Cached copies of what `RAFT_META` holds for the shard.
    applied: Option<LogId>,
    membership: StoredMembership,
}

/// What one blocking apply produced.
struct Applied {
    responses: Vec<Response>,
    last: LogId,
    membership: StoredMembership,
    woken: BTreeMap<Ispb, Wake>,
}

impl StateMachine {
    /// The state machine over `machine`, with snapshots under `snapshot_root`;
    /// `records` serves the records a received snapshot names and the store lacks.
    /// Does blocking I/O (metadata, snapshot directory): call it at start-up.
    pub fn open(
        store: Store,
        machine: Arc<RwLock<ShardMachine>>,
        observer: Arc<dyn ApplyObserver>,
        snapshot_root: &Path,
        records: Arc<dyn RecordSource>,
    ) -> Result<StateMachine, Error> {
        let shard = machine.read().shard();
        let applied: Option<Option<LogId>> = meta::get(&store, shard, meta::APPLIED)?;
        let membership: Option<StoredMembership> = meta::get(&store, shard, meta::MEMBERSHIP)?;
        let snapshots = SnapshotDir::open(snapshot_root, shard)?;
        Ok(StateMachine {
            shard,
            store,
            machine,
            observer,
            snapshots,
            records,
            applied: applied.flatten(),
            membership: membership.unwrap_or_default(),
        })
    }

    /// The shard's machine (shared with the readers).
    pub fn machine(&self) -> &Arc<RwLock<ShardMachine>> {
        &self.machine
    }

    /// The shard's snapshot files.
    pub fn snapshots(&self) -> &SnapshotDir {
        &self.snapshots
    }
}

/// Applies `entries` under the write lock and writes them as one batch.
///
/// On error the in-memory machine may be ahead of RocksDB; openraft treats the
/// storage error as fatal and stops the group, and a restart reloads from disk.
fn apply_entries(
    store: &Store,
    machine: &RwLock<ShardMachine>,
    entries: Vec<Entry<TypeConfig>>,
    mut membership: StoredMembership,
) -> Result<Option<Applied>, storage::Error> {
    let Some(last) = entries.last().map(|e| e.log_id) else {
        return Ok(None);
    };
    // Every normal entry's commands go through ONE `ShardMachine::apply`, so later
    // commands see the unwritten records (e.g. dedupe keys) of earlier entries.
    let mut commands = Vec::new();
    let mut counts = Vec::with_capacity(entries.len());
    let mut membership_changed = false;
    for entry in entries {
        match entry.payload {
            EntryPayload::Normal(request) => {
                counts.push(request.commands.len());
                commands.extend(request.commands);
            }
            EntryPayload::Blank => counts.push(0),
            EntryPayload::Membership(m) => {
                membership = StoredMembership::new(Some(entry.log_id), m);
                membership_changed = true;
                counts.push(0);
            }
        }
    }
    let mut batch = WriteBatch::default();
    let shard;
    let woken;
    let mut results = {
        let mut guard = machine.write();
        shard = guard.shard();
        let results = if commands.is_empty() { Vec::new() } else { guard.apply(commands, &mut batch)? };
        meta::put(store, &mut batch, shard, meta::APPLIED, &Some(last))?;
        // The stored membership changes only with a membership entry; rewriting it on
        // every apply would cost a key per entry for nothing.
        if membership_changed {
            meta::put(store, &mut batch, shard, meta::MEMBERSHIP, &membership)?;
        }
        store.write_relaxed(batch)?;
        woken = guard.drain_woken();
        results
    }
    .into_iter();
    let responses = counts.into_iter().map(|n| Response { results: results.by_ref().take(n).collect() }).collect();
    tracing::trace!(shard, last = %last, "entries applied");
    Ok(Some(Applied { responses, last, membership, woken }))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError<u64>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        // On the state machine's own task, not the blocking pool: the write is a
        // memtable insert without fsync (tens of µs), cheaper than the two thread
        // hand-offs of `spawn_blocking` — the Raft log's appends write inline too.
        let applied = apply_entries(&self.store, &self.machine, entries, self.membership.clone()).map_err(|e| {
            tracing::error!(shard = self.shard, error = %e, "apply failed");
            StorageIOError::write_state_machine(&e)
        })?;
        let Some(applied) = applied else {
            return Ok(Vec::new());
        };
        self.applied = Some(applied.last);
        self.membership = applied.membership;
        if !applied.woken.is_empty() {
            self.observer.wake(&applied.woken);
        }
        Ok(applied.responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::start(
            self.store.clone(),
            &self.machine,
            self.snapshots.clone(),
            self.applied,
            self.membership.clone(),
        )
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError<u64>> {
        let dir = self.snapshots.clone();
        let file = tokio::task::spawn_blocking(move || dir.create_receiving())
            .await
            .map_err(|e| Error::Io(io::Error::other(e)))
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<u64>> {
        let received = snapshot.into_std().await;
        let target = crate::snapshot_install::Target {
            store: &self.store,
            machine: &self.machine,
            dir: &self.snapshots,
            records: self.records.as_ref(),
        };
        let touched = crate::snapshot_install::install(target, meta, received).await.map_err(|e| {
            tracing::error!(shard = self.shard, snapshot = %meta.snapshot_id, error = %e, "snapshot install failed");
            StorageIOError::write_snapshot(Some(meta.signature()), &e)
        })?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        // Every stream of a touched ISPB may have changed under its readers.
        self.observer.wake(&touched.into_iter().map(|ispb| (ispb, Wake::Streams)).collect());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        // A newer snapshot may replace the current one between the two steps: retry.
        for _ in 0..3 {
            let Some(meta) = self.snapshots.current() else {
                return Ok(None);
            };
            match tokio::fs::File::open(self.snapshots.data_path(&meta.snapshot_id)).await {
                Ok(file) => return Ok(Some(Snapshot { meta, snapshot: Box::new(file) })),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageIOError::read_snapshot(Some(meta.signature()), &e).into()),
            }
        }
        let error = io::Error::new(io::ErrorKind::NotFound, "current snapshot keeps disappearing");
        Err(StorageIOError::read_snapshot(None, &error).into())
    }
}
