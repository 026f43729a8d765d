//! `SnapshotDir`: one shard's snapshot files, `<root>/shard-<N>/`.
//!
//! A snapshot is `<id>.snap` (the `storage::snapshot` dump) with `<id>.meta` beside
//! it (serde_json of `SnapshotMeta`). The `.meta` file is written last, atomically,
//! so it is the commit point: a `.snap` without its `.meta` is debris. Files in
//! progress end in `.part` (built here) or start with `recv-` (received from a
//! leader). Only the newest snapshot is kept. Every method here does blocking file
//! I/O: call it from the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::Error;
use crate::types::SnapshotMeta;

const SNAP: &str = "snap";
const META: &str = "meta";
const PART: &str = "part";
const RECEIVING: &str = "recv-";

/// One shard's snapshot directory; cheap to clone.
#[derive(Clone)]
pub struct SnapshotDir {
    inner: Arc<Inner>,
}

struct Inner {
    shard: u32,
    path: PathBuf,
    /// Metadata of the newest complete snapshot.
    current: Mutex<Option<SnapshotMeta>>,
    /// Distinguishes files created in the same nanosecond.
    counter: AtomicU64,
}

impl SnapshotDir {
    /// Opens (creating) `<root>/shard-<shard>/`, finds the newest complete snapshot
    /// and deletes everything else.
    pub fn open(root: &Path, shard: u32) -> Result<SnapshotDir, Error> {
        let path = root.join(format!("shard-{shard}"));
        fs::create_dir_all(&path)?;
        let mut newest: Option<SnapshotMeta> = None;
        for item in fs::read_dir(&path)? {
            let file = item?.path();
            if file.extension().is_some_and(|e| e == META) {
                match read_meta(&file) {
                    Ok(meta) if path.join(format!("{}.{SNAP}", meta.snapshot_id)).exists() => {
                        if newest.as_ref().is_none_or(|n| n.last_log_id <= meta.last_log_id) {
                            newest = Some(meta);
                        }
                    }
                    Ok(_) => tracing::warn!(shard, file = %file.display(), "snapshot metadata without data"),
                    Err(error) => tracing::warn!(shard, file = %file.display(), %error, "unreadable snapshot metadata"),
                }
            }
        }
        let dir = SnapshotDir {
            inner: Arc::new(Inner { shard, path, current: Mutex::new(None), counter: AtomicU64::new(0) }),
        };
        dir.remove_all_but(newest.as_ref().map(|m| m.snapshot_id.as_str()), InProgress::Remove)?;
        if let Some(meta) = &newest {
            tracing::info!(shard, snapshot = %meta.snapshot_id, last_log_id = ?meta.last_log_id, "snapshot found");
        }
        *dir.inner.current.lock() = newest;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Metadata of the newest complete snapshot.
    pub fn current(&self) -> Option<SnapshotMeta> {
        self.inner.current.lock().clone()
    }

    /// A fresh, unique id for a snapshot up to log `index` of `term`.
    pub fn new_id(&self, term: u64, index: u64) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        format!("{term}-{index}-{nanos}-{n}")
    }

    /// The data file of snapshot `id`.
    pub fn data_path(&self, id: &str) -> PathBuf {
        self.inner.path.join(format!("{id}.{SNAP}"))
    }

    /// Where snapshot `id` is written while it is being built.
    pub fn part_path(&self, id: &str) -> PathBuf {
        self.inner.path.join(format!("{id}.{SNAP}.{PART}"))
    }

    /// Creates a new, empty file (read + write) to receive a snapshot into.
    pub fn create_receiving(&self) -> Result<File, Error> {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = self.inner.path.join(format!("{RECEIVING}{nanos}-{n}.{PART}"));
        Ok(OpenOptions::new().read(true).write(true).create_new(true).open(path)?)
    }

    /// Makes snapshot `meta` (whose data file already exists, synced) the current one,
    /// unless a newer one is current meanwhile. Only the current snapshot is kept;
    /// returns whether `meta` became current. `drop_receiving` also deletes received
    /// files (they are consumed when a snapshot is installed).
    pub fn commit(&self, meta: &SnapshotMeta, drop_receiving: bool) -> Result<bool, Error> {
        let mut current = self.inner.current.lock();
        if current.as_ref().is_some_and(|c| c.last_log_id > meta.last_log_id) {
            drop(current);
            remove_if_present(&self.data_path(&meta.snapshot_id))?;
            return Ok(false);
        }
        let meta_path = self.inner.path.join(format!("{}.{META}", meta.snapshot_id));
        let part = self.inner.path.join(format!("{}.{META}.{PART}", meta.snapshot_id));
        let mut file = File::create(&part)?;
        file.write_all(&serde_json::to_vec(meta)?)?;
        file.sync_all()?;
        fs::rename(&part, &meta_path)?;
        sync_dir(&self.inner.path)?;
        *current = Some(meta.clone());
        drop(current);
        let in_progress = if drop_receiving { InProgress::RemoveReceived } else { InProgress::Keep };
        self.remove_all_but(Some(&meta.snapshot_id), in_progress)?;
        tracing::info!(shard = self.inner.shard, snapshot = %meta.snapshot_id, last_log_id = ?meta.last_log_id, "snapshot is current");
        Ok(true)
    }

    /// Puts the current snapshot's files into `<dest_root>/shard-<N>/` (hard links,
    /// copies across file systems), the metadata last; returns its metadata, `None`
    /// when the shard has no snapshot. Holds the current snapshot in place meanwhile.
    pub fn link_current_into(&self, dest_root: &Path) -> Result<Option<SnapshotMeta>, Error> {
        let current = self.inner.current.lock();
        let Some(meta) = current.clone() else { return Ok(None) };
        let dest = dest_root.join(format!("shard-{}", self.inner.shard));
        fs::create_dir_all(&dest)?;
        for name in [format!("{}.{SNAP}", meta.snapshot_id), format!("{}.{META}", meta.snapshot_id)] {
            let (from, to) = (self.inner.path.join(&name), dest.join(&name));
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to)?;
            }
        }
        drop(current);
        sync_dir(&dest)?;
        Ok(Some(meta))
    }

    /// Deletes every complete snapshot but `keep`, and files in progress as told.
    fn remove_all_but(&self, keep: Option<&str>, in_progress: InProgress) -> Result<(), Error> {
        for item in fs::read_dir(&self.inner.path)? {
            let path = item?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let remove = if name.ends_with(PART) {
                match in_progress {
                    InProgress::Keep => false,
                    InProgress::RemoveReceived => name.starts_with(RECEIVING),
                    InProgress::Remove => true,
                }
            } else {
                keep.is_none_or(|id| name != format!("{id}.{SNAP}") && name != format!("{id}.{META}"))
            };
            if remove {
                remove_if_present(&path)?;
            }
        }
        Ok(())
    }
}

/// What to do with files in progress when cleaning up.
#[derive(Clone, Copy)]
enum InProgress {
    /// Keep them (a build or a receive may be running).
    Keep,
    /// Remove received files (they were consumed by an install); keep builds.
    RemoveReceived,
    /// Remove them all (at start-up nothing is running).
    Remove,
}

fn read_meta(path: &Path) -> Result<SnapshotMeta, Error> {
    Ok(serde_json::from_slice(&fs::read(path)?)?)
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Makes renames in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
