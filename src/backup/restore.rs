//! `restore`: rebuilds a node's data dir from a backup (`pixstream restore`). The
//! node must be stopped. Every file the manifest lists must be there with its size;
//! the data dir must hold no store and no snapshots yet (a new disk, or the old
//! ones moved away by hand). Files are hard-linked when the backup is on the same
//! file system, copied otherwise, and synced. The restored node starts at the
//! backup's instant, leading no shard (the votes it restored keep their terms but
//! not their leadership); table, blob and snapshot files are shared with the backup by
//! hard links when they can be (nothing rewrites them), the rest is copied. In a cluster it rejoins its shards' groups and catches up from
//! their leaders (log entries, or a snapshot when the log has moved on). The key
//! files of the backup are put where the configuration keeps keys, unless keys
//! are there already.

use std::fs;
use std::path::Path;

use super::{AUDIT_KEYS_DIR, DB_DIR, FORMAT, Manifest, SNAPSHOTS_DIR, TOKEN_KEYS_DIR, copy_files, failed, refused};
use crate::config::Config;
use crate::error::Error;

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Key files put in place (key directories that already held keys are kept).
    pub keys_restored: usize,
}

/// Restores the backup in `from` into the data dir of `config`'s node; returns its
/// manifest.
pub fn restore(from: &Path, config: &Config) -> Result<Restored, Error> {
    let (data_dir, node_id, shards) = (&config.data_dir, config.node_id, config.shards);
    let manifest = Manifest::read(from)?;
    if manifest.format != FORMAT {
        return Err(refused(format!("backup format {} (this version reads {FORMAT})", manifest.format)));
    }
    if manifest.node_id != node_id {
        return Err(refused(format!(
            "the backup is of node {}, the configuration is of node {node_id}",
            manifest.node_id
        )));
    }
    if manifest.shards != shards {
        return Err(refused(format!("the backup has {} shards, the configuration {shards}", manifest.shards)));
    }
    for file in &manifest.files {
        let bytes = fs::metadata(from.join(&file.path)).map(|m| m.len()).ok();
        if bytes != Some(file.bytes) {
            return Err(refused(format!("{}: expected {} bytes, found {bytes:?}", file.path, file.bytes)));
        }
    }
    for dir in [DB_DIR, SNAPSHOTS_DIR] {
        let target = data_dir.join(dir);
        if fs::read_dir(&target).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(refused(format!("{} is not empty: restore into a data dir without data", target.display())));
        }
    }
    let data = |f: &&super::BackupFile| f.path.starts_with(DB_DIR) || f.path.starts_with(SNAPSHOTS_DIR);
    for file in manifest.files.iter().filter(data) {
        let (source, target) = (from.join(&file.path), data_dir.join(&file.path));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| failed("create directory", e))?;
        }
        if !(is_immutable(&file.path) && fs::hard_link(&source, &target).is_ok()) {
            fs::copy(&source, &target).map_err(|e| failed(&format!("copy {}", file.path), e))?;
        }
    }
    sync_tree(data_dir).map_err(|e| failed("sync the restored files", e))?;
    let store = storage::Store::open(&config.db_dir(), storage::StoreOptions::default())
        .map_err(|e| failed("open the restored store", e))?;
    raft::forget_leadership(&store, shards).map_err(|e| failed("reset the restored votes", e))?;
    drop(store);
    let mut keys_restored = 0;
    for (backed_up, target) in [(TOKEN_KEYS_DIR, &config.key_dir), (AUDIT_KEYS_DIR, &config.audit.key_dir)] {
        if fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
            tracing::info!(dir = %target.display(), "keys already present: kept");
            continue;
        }
        keys_restored += copy_files(&from.join(backed_up), target).map_err(|e| failed("restore keys", e))?;
    }
    Ok(Restored { manifest, keys_restored })
}

/// Files nothing ever writes again once made — table and blob files, snapshots —
/// may be shared with the backup; the rest (WAL, MANIFEST, CURRENT, OPTIONS) a
/// starting store may change, so they are copied.
fn is_immutable(path: &str) -> bool {
    [".sst", ".blob", ".snap", ".meta"].iter().any(|suffix| path.ends_with(suffix))
}

/// Syncs every file and directory under `root`.
fn sync_tree(root: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            fs::File::open(entry.path())?.sync_all()?;
        }
    }
    fs::File::open(root)?.sync_all()
}
