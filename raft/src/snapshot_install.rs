//! Installing a snapshot received from the shard's leader, in three steps:
//! 1. the file is copied into the snapshot directory and its ranges are read;
//! 2. the records of those ranges this node lacks are fetched from a replica that
//!    has applied at least as far (`record_fetch`) — for a follower that fell behind,
//!    what it missed, not the whole retained history;
//! 3. the shard's state is replaced by the snapshot's in one durable batch with the
//!    Raft metadata, and the file becomes the current snapshot.
//!
//! A crash between 2 and 3 leaves only fetched records beyond what the node has
//! applied: immutable, identical to what applying the log would write, and
//! invisible until the state that names them is installed or applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::WriteBatch;
use storage::snapshot::{self, RecordRange};
use storage::{Ispb, ShardMachine, Store};

use crate::error::Error;
use crate::meta;
use crate::record_fetch::{self, RecordSource};
use crate::snapshot_dir::{SnapshotDir, sync_dir};
use crate::types::{PeerNode, SnapshotMeta};

/// What an install works on.
pub(crate) struct Target<'a> {
    pub store: &'a Store,
    pub machine: &'a Arc<RwLock<ShardMachine>>,
    pub dir: &'a SnapshotDir,
    pub records: &'a dyn RecordSource,
}

/// Installs the snapshot `meta` received in `received`. Returns every ISPB whose
/// state may have changed (before or after).
pub(crate) async fn install(target: Target<'_>, meta: &SnapshotMeta, received: File) -> Result<BTreeSet<Ispb>, Error> {
    let shard = target.machine.read().shard();
    let (store, dir, owned) = (target.store.clone(), target.dir.clone(), meta.clone());
    let (ranges, wanted) = blocking(move || place(&store, &dir, &owned, received)).await?;
    let members: BTreeMap<u64, PeerNode> =
        meta.last_membership.membership().nodes().map(|(id, node)| (*id, node.clone())).collect();
    let applied_at_least = meta.last_log_id.map_or(0, |l| l.index);
    let fetched =
        record_fetch::fetch_into(target.records, target.store, shard, &members, applied_at_least, wanted).await?;
    let (store, machine, dir, owned) = (target.store.clone(), target.machine.clone(), target.dir.clone(), meta.clone());
    let (touched, copied) = blocking(move || replace_state(&store, &machine, &dir, &owned, &ranges)).await?;
    tracing::info!(
        shard,
        snapshot = %meta.snapshot_id,
        copied,
        fetched_records = fetched.records,
        fetched_bytes = fetched.bytes,
        "snapshot installed"
    );
    Ok(touched)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Io(io::Error::other(e)))?
}

/// Step 1: copies `received` into place; returns the file's ranges and the parts of
/// them this store lacks.
fn place(
    store: &Store,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    mut received: File,
) -> Result<(Vec<RecordRange>, Vec<RecordRange>), Error> {
    let data = dir.data_path(&meta.snapshot_id);
    let part = dir.part_path(&meta.snapshot_id);
    received.seek(SeekFrom::Start(0))?;
    let mut copy = File::create(&part)?;
    io::copy(&mut received, &mut copy)?;
    copy.sync_all()?;
    drop((received, copy));
    std::fs::rename(&part, &data)?;
    sync_dir(dir.path())?;
    let ranges = snapshot::read_ranges(&mut BufReader::new(File::open(&data)?))?;
    let mut wanted = Vec::new();
    for range in &ranges {
        wanted.extend(snapshot::missing(store, range)?);
    }
    Ok((ranges, wanted))
}

/// Step 3: replaces the shard's state and makes the file the current snapshot.
/// Returns the ISPBs touched and the number of records copied from the file.
fn replace_state(
    store: &Store,
    machine: &RwLock<ShardMachine>,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    ranges: &[RecordRange],
) -> Result<(BTreeSet<Ispb>, u64), Error> {
    for range in ranges {
        for absent in snapshot::missing(store, range)? {
            // The replica that served the range no longer holds these: a command
            // after the snapshot removed them, and this node will apply it too.
            tracing::info!(?absent, "records named by the snapshot were removed since; not fetched");
        }
    }
    let mut reader = BufReader::new(File::open(dir.data_path(&meta.snapshot_id))?);
    let mut batch = WriteBatch::default();
    let mut guard = machine.write();
    let shard = guard.shard();
    let mut touched: BTreeSet<Ispb> = guard.records().map(|t| t.ispb).collect();
    let copied = guard.install_snapshot(&mut reader, ranges, &mut batch)?;
    meta::put(store, &mut batch, shard, meta::APPLIED, &meta.last_log_id)?;
    meta::put(store, &mut batch, shard, meta::MEMBERSHIP, &meta.last_membership)?;
    store.write_durable(batch)?;
    guard.reload()?;
    touched.extend(guard.records().map(|t| t.ispb));
    guard.drain_woken();
    drop(guard);
    dir.commit(meta, true)?;
    Ok((touched, copied))
}
