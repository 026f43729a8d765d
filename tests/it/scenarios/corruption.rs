//! Storage corruption detected at start: a stopped node's RocksDB files are damaged
//! (the newest table file truncated, or the MANIFEST overwritten). `pixstream serve`
//! refuses to start at once, with an error that names the store and the damage — no
//! panic, no start with data missing — and the node is recovered from its backup
//! (`pixstream restore`) with every message the backup held.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::assert_node_stores;
use crate::harness::{ISPB, MULTI, TestNode, free_port, messages, run_cli, timing};

/// A refused start ends within this (RocksDB reads the MANIFEST and opens every
/// table file on start; nothing waits for a peer).
const REFUSED_WITHIN: Duration = Duration::from_secs(30);

/// The file of `db` with the highest number ending in `suffix` (`.sst`).
fn newest(db: &Path, prefix: &str, suffix: &str) -> PathBuf {
    std::fs::read_dir(db)
        .expect("read the db dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .max()
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} file in {}", db.display()))
}

/// Cuts the newest table file to half its length (a torn copy, a bad sector).
fn truncate_newest_table(db: &Path) {
    let table = newest(db, "", ".sst");
    let len = std::fs::metadata(&table).expect("stat").len();
    std::fs::OpenOptions::new().write(true).open(&table).expect("open table").set_len(len / 2).expect("truncate");
}

/// Overwrites the first 64 bytes of the MANIFEST the CURRENT file names.
fn overwrite_manifest(db: &Path) {
    let current = std::fs::read_to_string(db.join("CURRENT")).expect("read CURRENT");
    let manifest = db.join(current.trim());
    let mut bytes = std::fs::read(&manifest).expect("read MANIFEST");
    let end = bytes.len().min(64);
    bytes[..end].fill(0xA5);
    std::fs::write(&manifest, bytes).expect("write MANIFEST");
}

/// Writes 40 messages and reads 10 of them, takes a backup, stops the node, applies
/// `corrupt` to its db dir, and checks that the real binary refuses to start on it
/// and that the node restored from the backup holds everything.
async fn refused_then_restored(corrupt: fn(&Path)) {
    let mut node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    let acknowledged = node.append(ISPB, &messages(ISPB, 40)).await;
    let first = node.start_stream(ISPB, MULTI).await;
    let backups = tempfile::tempdir().expect("temp dir");
    let backup = backups.path().join("node-1");
    let backup_arg = backup.to_str().expect("utf-8 path");
    let (ok, text) = run_cli(&["admin", "backup", "--out", backup_arg, "--url", &node.internal]).await;
    assert!(ok, "backup: {text}");
    node.stop_node().await;

    let data_dir = node.config.data_dir.clone();
    let db = node.config.db_dir();
    corrupt(&db);
    let data_arg = data_dir.to_str().expect("utf-8 path");
    let (public, internal) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let serve = ["serve", "--data-dir", data_arg, "--public-addr", &public, "--internal-addr", &internal];
    let (ok, text) = tokio::time::timeout(REFUSED_WITHIN, run_cli(&serve))
        .await
        .unwrap_or_else(|_| panic!("a node on a corrupt store was still running after {REFUSED_WITHIN:?}"));
    assert!(!ok, "the node refused to start: {text}");
    let store = format!("open storage: {}: rocksdb: Corruption", db.display());
    assert!(text.contains(&store), "names the store and the damage: {text}");
    assert!(!text.contains("panicked"), "a refusal, not a panic: {text}");

    // Recovery: the damaged store goes aside and the backup is restored in its place.
    for damaged in ["db", "snapshots"] {
        std::fs::rename(data_dir.join(damaged), data_dir.join(format!("{damaged}.corrupt"))).expect("move aside");
    }
    let (ok, text) = run_cli(&["restore", "--from", backup_arg, "--data-dir", data_arg]).await;
    assert!(ok && text.contains("restored node 1"), "{text}");
    node.restart().await;
    assert_node_stores(&node, &acknowledged);
    let second = node.follow(&first.next, MULTI).await;
    assert_eq!(second.seqs(), (11..=20).collect::<Vec<_>>(), "the PSP's stream goes on where it was");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_table_file_stops_the_start_and_the_backup_restores_the_node() {
    refused_then_restored(truncate_newest_table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_manifest_stops_the_start_and_the_backup_restores_the_node() {
    refused_then_restored(overwrite_manifest).await;
}
