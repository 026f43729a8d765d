//! Backup and restore of one node (SPEC.md §4): `take` writes an online, consistent
//! copy of the node's data into a new directory on the node's file system
//! (`raft::Shards::backup`: a RocksDB checkpoint, files hard-linked, and each
//! shard's current snapshot) and a `manifest.json` listing every file with its
//! size; `restore` (in `restore`) rebuilds a node's data dir from such a copy.
//!
//! The node's key files come along — the token keys (`keys/tokens/`), without
//! which the PSPs' `PI-Pull-Next` tokens would not verify on the restored node, and
//! the audit checkpoint key (`keys/audit/`) — so the backup directory is as secret
//! as the data dir itself: it is made readable by its owner only. The manifest is
//! written last: a directory without one is an unfinished backup and `restore`
//! refuses it.

pub mod restore;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;

/// The manifest's file name inside a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// Version of the backup layout; `restore` refuses others.
pub const FORMAT: u32 = 1;
/// The store's directory in a backup and in a data dir.
pub const DB_DIR: &str = "db";
/// The snapshots' directory in a backup and in a data dir.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The token keys' directory in a backup.
pub const TOKEN_KEYS_DIR: &str = "keys/tokens";
/// The audit checkpoint key's directory in a backup.
pub const AUDIT_KEYS_DIR: &str = "keys/audit";

/// What a backup directory holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The node the backup was taken of (a restore must be for the same id).
    pub node_id: u64,
    /// Shard count of the data (fixed for its life).
    pub shards: u32,
    /// When the backup was taken (UTC, milliseconds).
    pub created_at: String,
    /// The pixstream version that wrote it.
    pub version: String,
    /// Per hosted shard: the snapshot copied and the applied index at the start.
    pub shard_state: Vec<raft::ShardBackup>,
    /// Every file, relative to the backup directory, with its size.
    pub files: Vec<BackupFile>,
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: String,
    pub bytes: u64,
}

impl Manifest {
    /// Total bytes of the backup's files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Reads the manifest of the backup in `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, Error> {
        let path = dir.join(MANIFEST);
        let bytes = fs::read(&path).map_err(|e| refused(format!("{}: {e} (not a finished backup)", path.display())))?;
        serde_json::from_slice(&bytes).map_err(|e| refused(format!("{}: {e}", path.display())))
    }
}

/// Takes a backup of the node (its shards, and the key directories of `config`)
/// into `out`: an absolute path that does not exist yet, whose parent does.
/// Blocking I/O: call it from the blocking pool.
pub fn take(shards: &raft::Shards, config: &Config, out: &Path) -> Result<Manifest, Error> {
    if !out.is_absolute() {
        return Err(refused(format!("{}: the backup directory must be an absolute path", out.display())));
    }
    if out.exists() {
        return Err(refused(format!("{} exists: a backup goes into a new directory", out.display())));
    }
    if !out.parent().is_some_and(Path::is_dir) {
        return Err(refused(format!("{}: its parent directory does not exist", out.display())));
    }
    let shard_state = shards.backup(out).map_err(|e| failed("backup", e))?;
    owner_only(out).map_err(|e| failed("restrict the backup directory", e))?;
    copy_files(&config.key_dir, &out.join(TOKEN_KEYS_DIR)).map_err(|e| failed("copy the token keys", e))?;
    copy_files(&config.audit.key_dir, &out.join(AUDIT_KEYS_DIR)).map_err(|e| failed("copy the audit key", e))?;
    let manifest = Manifest {
        format: FORMAT,
        node_id: shards.node_id(),
        shards: shards.shard_count(),
        created_at: wire::clock::format_utc_ms(wire::clock::now_ms()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        shard_state,
        files: list_files(out).map_err(|e| failed("list backup files", e))?,
    };
    write_synced(&out.join(MANIFEST), &serde_json::to_vec_pretty(&manifest).map_err(|e| failed("manifest", e))?)
        .map_err(|e| failed("write manifest", e))?;
    Ok(manifest)
}

/// Copies the regular files directly in `from` (if it exists) into `to`, keeping
/// their permissions; returns how many.
pub(crate) fn copy_files(from: &Path, to: &Path) -> std::io::Result<usize> {
    let Ok(entries) = fs::read_dir(from) else { return Ok(0) };
    fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(unix)]
fn owner_only(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn owner_only(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Every regular file under `root`, relative to it, sorted.
fn list_files(root: &Path) -> std::io::Result<Vec<BackupFile>> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(relative) = dirs.pop() {
        for entry in fs::read_dir(root.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                files.push(BackupFile { path: path.to_string_lossy().into_owned(), bytes: entry.metadata()?.len() });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Writes `bytes` to `path` and syncs the file and its directory.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn refused(why: String) -> Error {
    Error::Backup { why, refused: true }
}

fn failed(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Backup { why: format!("{what}: {error}"), refused: false }
}
