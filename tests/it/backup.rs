//! Backup and restore (SPEC.md §4): `pixstream admin backup` copies a node online
//! while producers append; `pixstream restore` rebuilds a data dir from the copy;
//! the restored node holds every message acknowledged before the backup began, its
//! tenants and its open streams (a PSP's token goes on where it was), and in a
//! cluster a restored node rejoins its shards and catches up. Bad calls are refused
//! and change nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use pixstream::config::StartMode;
use storage::Ispb;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_acknowledged_message_and_the_open_stream() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    node.append(ISPB, &messages(ISPB, 30)).await;
    let first = node.start_stream(ISPB, MULTI).await;
    let second = node.follow(&first.next, MULTI).await;
    assert_eq!((first.seqs(), second.seqs()), ((1..=10).collect(), (11..=20).collect()));

    // A producer appends all through the backup.
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let producer = tokio::spawn({
        let (api, stop, acked) = (node.api.clone(), stop.clone(), acked.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let appended = api.append(OTHER_ISPB, &messages(OTHER_ISPB, 2)).await;
                acked.lock().extend(appended);
            }
        }
    });
    while acked.lock().len() < 20 {
        tokio::time::sleep(timing::CLUSTER_POLL).await;
    }
    let before_backup: Vec<Appended> = acked.lock().clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("backup-1");
    let out_arg = out.to_str().expect("utf-8 path");
    let (ok, text) = run_cli(&["admin", "backup", "--out", out_arg, "--url", &node.internal]).await;
    assert!(ok && text.contains("backup of node 1"), "{text}");
    while acked.lock().len() < before_backup.len() + 10 {
        tokio::time::sleep(timing::CLUSTER_POLL).await;
    }
    stop.store(true, Ordering::Relaxed);
    producer.await.expect("the producer ran");

    // Bad calls: refused with the reason, nothing written.
    let (ok, text) = run_cli(&["admin", "backup", "--out", out_arg, "--url", &node.internal]).await;
    assert!(!ok && text.contains("400") && text.contains("exists"), "{text}");
    let (ok, text) = run_cli(&["admin", "backup", "--out", "relative/dir", "--url", &node.internal]).await;
    assert!(!ok && text.contains("400") && text.contains("absolute"), "{text}");
    let orphan = dir.path().join("no-such-parent/backup");
    let (ok, text) =
        run_cli(&["admin", "backup", "--out", orphan.to_str().expect("utf-8"), "--url", &node.internal]).await;
    assert!(!ok && text.contains("parent"), "{text}");
    assert!(!orphan.parent().expect("parent").exists());

    let restored = dir.path().join("restored");
    let restored_arg = restored.to_str().expect("utf-8 path");
    let (ok, text) = run_cli(&["restore", "--from", out_arg, "--data-dir", restored_arg]).await;
    assert!(ok && text.contains("restored node 1"), "{text}");
    let (ok, text) = run_cli(&["restore", "--from", out_arg, "--data-dir", restored_arg]).await;
    assert!(!ok && text.contains("not empty"), "a restore never overwrites data: {text}");
    let unfinished = dir.path().join("unfinished");
    std::fs::create_dir(&unfinished).expect("mkdir");
    let elsewhere = dir.path().join("elsewhere");
    let (ok, text) = run_cli(&[
        "restore",
        "--from",
        unfinished.to_str().expect("utf-8"),
        "--data-dir",
        elsewhere.to_str().expect("utf-8"),
    ])
    .await;
    assert!(!ok && text.contains("not a finished backup"), "{text}");
    assert!(!elsewhere.join("db").exists(), "a refused restore writes nothing");

    node.stop().await;
    let copy = TestNode::start(|f| {
        f.storage.data_dir = restored.clone();
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let seqs: Vec<u64> = before_backup.iter().map(|a| a.seq).collect();
    let stored = copy.stored(OTHER_ISPB, &seqs);
    let ids: Vec<&str> = stored.iter().map(|m| m.resource_id.as_str()).collect();
    let acked_ids: Vec<&str> = before_backup.iter().map(|a| a.resource_id.as_str()).collect();
    assert_eq!(ids, acked_ids, "every message acknowledged before the backup began is in it");
    assert_eq!(copy.open_streams(ISPB), 1, "the open stream came along");
    assert_eq!(copy.watermark(ISPB), 11);
    let third = copy.follow(&second.next, MULTI).await;
    assert_eq!(third.seqs(), (21..=30).collect::<Vec<_>>(), "the PSP's token goes on where it was");
    copy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restored_from_its_backup_rejoins_the_cluster_and_catches_up() {
    let mut cluster = TestCluster::start(&["sp1", "sp2", "rj1"], 2).await;
    let api = cluster.api(1);
    let early = retry_until_created(&api, ISPB, &messages(ISPB, 20)).await;
    cluster.wait_converged(ISPB, timing::CONVERGE).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("node-3");
    let (ok, text) =
        run_cli(&["admin", "backup", "--out", out.to_str().expect("utf-8"), "--url", &cluster.api(3).internal]).await;
    assert!(ok && text.contains("backup of node 3"), "{text}");
    let late = retry_until_created(&api, ISPB, &messages(ISPB, 20)).await;

    // Node 3 loses its disk. Raft never lets a voter's log go back, so it leaves
    // the shards first, is rebuilt from its backup (which is behind), starts as a
    // joining node and is added back: it catches up from the leaders.
    let all = cluster.nodes();
    let without_3: Vec<_> = all.iter().filter(|n| n.id != 3).cloned().collect();
    cluster.post_members(1, &without_3).await;
    cluster.stop(3).await;
    let config = cluster.member(3).config.clone();
    for lost in ["db", "snapshots"] {
        std::fs::remove_dir_all(config.data_dir.join(lost)).expect("remove");
    }
    let restored = pixstream::backup::restore::restore(&out, &config).expect("restored");
    assert_eq!(restored.manifest.node_id, 3);
    cluster.restart_as(3, StartMode::Join).await;
    cluster.post_members(1, &all).await;
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!(state.next_seq, 41);
    let ispb = Ispb::parse(ISPB).expect("valid");
    let seqs: Vec<u64> = early.iter().chain(&late).map(|a| a.seq).collect();
    let on_node_3 = cluster
        .member(3)
        .app()
        .shards
        .read(&ispb, |machine| machine.store().read_messages(&ispb, &seqs))
        .expect("node 3 replicates the shard")
        .expect("read");
    assert_eq!(on_node_3.len(), 40, "node 3 caught up past its backup");
    cluster.shutdown().await;
}
