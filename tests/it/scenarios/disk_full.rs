//! Disk full: a node's data dir is on a small tmpfs (a real `ENOSPC`), filled up by
//! a file that is not pixstream's. Producers get 503 `unavailable` with
//! `Retry-After` — never a 201 for a write that is not stored, never a 500 — and no
//! acknowledged message is lost. A failed write to the Raft log stops the shard
//! groups of that node (openraft treats storage errors as fatal: the in-memory
//! state may be ahead of the disk), so freeing space is not enough: the node serves
//! again after a restart, which reloads everything from disk. In a cluster the
//! other replicas elect a leader meanwhile and the restarted node catches up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{assert_node_stores, settle};
use crate::harness::{
    Api, ISPB, MULTI, TestCluster, TestNode, Traffic, appended, assert_problem, messages, retry_after, timing,
};

/// A tmpfs mounted on a fresh directory, unmounted when dropped (lazily, so also
/// while a failed test's node still holds files open).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Room for a node's RocksDB (its write-ahead log preallocates ~70 MB) and some.
    const SIZE: &'static str = "160m";

    fn mount() -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        Tmpfs::mount_on(dir)
    }

    fn mount_on(dir: tempfile::TempDir) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={}", Tmpfs::SIZE), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs on {} (the test needs root)", dir.path().display());
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Appends to `filler` until the file system is full to the last byte; returns how
/// many bytes it took.
fn fill(filler: &Path) -> usize {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(filler).expect("open filler");
    let mut written = 0;
    for size in [1 << 20, 4096, 1] {
        let chunk = vec![0u8; size];
        while file.write_all(&chunk).is_ok() {
            written += size;
        }
    }
    written
}

/// Fills the disk of a node whose store is `store`, in `dir`, so that its next write
/// to the write-ahead log fails; returns the filler file, to delete later. RocksDB
/// preallocates each WAL file (~70 MB): a full disk is felt once the node moves to
/// a new WAL file. So the disk is filled, the store flushed (which moves to a new
/// WAL file — or already fails for want of space), and the space the old WAL frees
/// when RocksDB deletes it in the background filled too, until no more comes free.
async fn fill_up(dir: &Path, store: &storage::Store) -> PathBuf {
    let filler = dir.join("filler");
    fill(&filler);
    let _ = store.flush();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        quiet = if fill(&filler) == 0 { quiet + 1 } else { 0 };
        assert!(Instant::now() < deadline, "the disk of {} kept freeing space", dir.display());
    }
    filler
}

/// Deletes the filler: the space returns.
fn free(filler: PathBuf) {
    std::fs::remove_file(filler).expect("delete filler");
}

/// `GET /readyz` of a node.
async fn readyz(api: &Api) -> reqwest::Response {
    api.client.get(format!("{}{}", api.internal, wire::paths::READYZ)).send().await.expect("/readyz answers")
}

/// A write refused for want of space: 503 `unavailable`, with `Retry-After`.
async fn assert_refused(response: reqwest::Response) {
    let problem = assert_problem(response, 503, "unavailable").await;
    assert!(retry_after(&problem.headers) >= 1, "a 503 says when to retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_serves_after_a_restart() {
    let disk = Tmpfs::mount();
    let data_dir = disk.path().join("node");
    let mut node = TestNode::start(|f| {
        f.storage.data_dir = data_dir.clone();
        f.storage.fsync = true;
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let acknowledged = node.append(ISPB, &messages(ISPB, 20)).await;
    let first = node.start_stream(ISPB, MULTI).await;
    assert_eq!(first.seqs(), (1..=10).collect::<Vec<_>>());

    let filler = fill_up(disk.path(), &node.app().store).await;
    for _ in 0..5 {
        assert_refused(node.post_xml(ISPB, messages(ISPB, 1).remove(0), None).await).await;
    }
    // The node takes itself out of rotation: /readyz fails (the `cluster status`
    // view still lists its leadership, from before the failure).
    let problem = assert_problem(readyz(&node.api).await, 503, "unavailable").await;
    assert!(problem.detail.contains("storage failure"), "{}", problem.detail);
    // A read that would confirm and hand out is a write too.
    assert_refused(node.get(&first.next, MULTI).await).await;

    free(filler);
    // The shard groups stopped at the failed write; space alone does not bring
    // them back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_refused(node.post_xml(ISPB, messages(ISPB, 1).remove(0), None).await).await;

    node.restart().await;
    assert_eq!(readyz(&node.api).await.status(), StatusCode::OK, "ready again after the restart");
    assert_node_stores(&node, &acknowledged);
    let second = node.follow(&first.next, MULTI).await;
    assert_eq!(second.seqs(), (11..=20).collect::<Vec<_>>(), "the stream goes on where it was");
    let more = node.append(ISPB, &messages(ISPB, 3)).await;
    assert!(more[0].seq > 20, "writes are accepted again");
    let third = node.follow(&second.next, MULTI).await;
    assert_eq!(third.ids(), more.iter().map(|a| a.resource_id.clone()).collect::<Vec<_>>());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_with_a_full_disk_gives_way_and_catches_up_after_a_restart() {
    // Each node's data dir (`<data_dir>/node-N`) on a tmpfs of its own.
    let root = tempfile::tempdir().expect("temp dir");
    let disks: Vec<Tmpfs> = (1..=3)
        .map(|id| {
            let dir = tempfile::Builder::new().prefix(&format!("node-{id}")).tempdir_in(root.path()).expect("dir");
            let disk = Tmpfs::mount_on(dir);
            std::os::unix::fs::symlink(disk.path(), root.path().join(format!("node-{id}"))).expect("symlink");
            disk
        })
        .collect();
    let data_dir = root.path().to_path_buf();
    let mut cluster = TestCluster::start_with(&["r1", "r2", "r3"], 4, move |f| {
        f.storage.data_dir = data_dir.clone();
        f.storage.fsync = true;
    })
    .await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("the shard has a leader");
    let others: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(50);
    let pullers = [cluster.api(others[0]), cluster.api(others[1])];
    let traffic = Traffic::start(ISPB, cluster.api(others[0]), &pullers, deadline);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let disk = &disks[(leader - 1) as usize];
    let filler = fill_up(disk.path(), &cluster.member(leader).app().store).await;
    // Through the node with the full disk: 503, or a success the new leader gave.
    let (mut through_full, mut refused) = (Vec::new(), 0);
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let response = cluster.api(leader).post_xml(ISPB, messages(ISPB, 1).remove(0), None).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_refused(response).await;
            refused += 1;
        } else {
            let (status, outcome) = appended(response).await;
            assert_eq!(status, StatusCode::CREATED, "the full node answers 201 (forwarded) or 503");
            through_full.extend(outcome);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refused > 0, "the node with the full disk refused writes");
    assert_problem(readyz(&cluster.api(leader)).await, 503, "unavailable").await;
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert!(others.contains(&new_leader));

    free(filler);
    cluster.restart(leader).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle(cluster, traffic, through_full).await;
}
