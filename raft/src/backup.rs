//! `Shards::backup`: an online, consistent copy of this node's data — what a
//! restored node needs to take its place.
//!
//! A backup directory holds `db/`, a RocksDB checkpoint of the whole store (every
//! shard's Raft log, vote, applied state, tenants, streams, messages and audit
//! chains, at one instant; files hard-linked when on the same file system), and
//! `snapshots/shard-<N>/`, each hosted shard's current snapshot. The snapshots are
//! linked first and the checkpoint taken after, so every snapshot is at or behind the
//! checkpoint's applied state; when a shard made a new snapshot meanwhile (its log
//! may then be purged past the one linked) the copy is thrown away and taken again.
//! Writes go on throughout: nothing is paused.

use std::fs;
use std::path::Path;

use openraft::Vote;
use serde::{Deserialize, Serialize};
use storage::Store;

use crate::error::Error;
use crate::meta;
use crate::shards::Shards;

/// Prepares a store restored from a backup to start: every shard's vote keeps its
/// term and candidate but loses its leadership (a committed vote of this node
/// would make it lead again at start, in a term long over). Run with the node
/// stopped, on the restored store.
pub fn forget_leadership(store: &Store, shards: u32) -> Result<usize, Error> {
    let mut changed = 0;
    let mut batch = rocksdb::WriteBatch::default();
    for shard in 0..shards {
        let Some(vote) = meta::get::<Vote<u64>>(store, shard, meta::VOTE)? else { continue };
        if vote.is_committed() {
            let released = Vote::new(vote.leader_id.term, vote.leader_id.node_id);
            meta::put(store, &mut batch, shard, meta::VOTE, &released)?;
            changed += 1;
        }
    }
    store.write_durable(batch)?;
    Ok(changed)
}

/// Checkpoint attempts before giving up (each is lost only to a snapshot built in
/// the few milliseconds a checkpoint takes).
const ATTEMPTS: usize = 5;

/// What a backup holds of one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardBackup {
    pub shard: u32,
    /// The snapshot copied beside the store, if the shard had one.
    pub snapshot: Option<String>,
    /// Last log index the copied snapshot covers (0 without one).
    pub snapshot_index: u64,
    /// Last applied log index when the backup started (the checkpoint has at least it).
    pub applied_index: u64,
}

impl Shards {
    /// Writes a backup of this node into `out` (which must not exist; its parent
    /// must). Blocking file and RocksDB I/O: call it from the blocking pool.
    pub fn backup(&self, out: &Path) -> Result<Vec<ShardBackup>, Error> {
        if out.exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists: a backup goes into a new directory", out.display()),
            )));
        }
        fs::create_dir(out)?;
        for _ in 0..ATTEMPTS {
            let shards = self.link_snapshots(&out.join("snapshots"))?;
            self.store().checkpoint(&out.join("db"))?;
            let unchanged = shards.iter().all(|b| {
                let current = self.snapshot_dir(b.shard).and_then(|d| d.current()).map(|m| m.snapshot_id);
                current == b.snapshot
            });
            if unchanged {
                return Ok(shards);
            }
            tracing::info!(out = %out.display(), "a shard made a snapshot during the backup; taking it again");
            fs::remove_dir_all(out.join("db"))?;
            fs::remove_dir_all(out.join("snapshots"))?;
        }
        Err(Error::Unavailable(format!("snapshots kept changing during {ATTEMPTS} backup attempts")))
    }

    /// Links every hosted shard's current snapshot under `root`.
    fn link_snapshots(&self, root: &Path) -> Result<Vec<ShardBackup>, Error> {
        fs::create_dir_all(root)?;
        let mut shards = Vec::new();
        for shard in self.hosted_shards() {
            let Some(dir) = self.snapshot_dir(shard) else { continue };
            let applied_index = self.metrics(shard).and_then(|m| m.last_applied).map_or(0, |id| id.index);
            let meta = dir.link_current_into(root)?;
            shards.push(ShardBackup {
                shard,
                snapshot_index: meta.as_ref().and_then(|m| m.last_log_id).map_or(0, |id| id.index),
                snapshot: meta.map(|m| m.snapshot_id),
                applied_index,
            });
        }
        Ok(shards)
    }
}
