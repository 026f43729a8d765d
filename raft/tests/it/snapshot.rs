//! Snapshots: built by policy, the log purged behind them, state intact after a
//! restart; and a snapshot installed into another store replaces its shard state.

use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, RaftLogReader, RaftSnapshotBuilder};
use parking_lot::RwLock;
use raft::{LogId, LogStore, NoopObserver, Request, ShardsConfig, StateMachine};
use storage::{CommandResult, ShardMachine, Store};
use tempfile::TempDir;

use crate::{RecordingObserver, append, config, ispb, open_store, start};

fn snapshot_files(dir: &std::path::Path, shard: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("snapshots").join(format!("shard-{shard}")))
        .expect("snapshot dir exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purge_the_log_and_survive_restart() {
    let dir = TempDir::new().expect("temp dir");
    let target = ispb("32074986");
    let small =
        |dir: &std::path::Path| ShardsConfig { snapshot_logs_since_last: 50, logs_to_keep: 10, ..config(dir, 2) };
    let shard = {
        let store = open_store(dir.path()).await;
        let shards = start(store.clone(), small(dir.path()), Arc::new(NoopObserver)).await;
        let shard = shards.shard_for(&target);
        for n in 1..=300 {
            shards.propose(append(target, &format!("k{n}"))).await.expect("append commits");
        }
        // Policy snapshots run every 50 entries; a trigger during a build is ignored.
        shards.raft(shard).expect("hosted").trigger().snapshot().await.expect("snapshot triggered");
        let mut metrics = shards.raft(shard).expect("hosted").metrics();
        tokio::time::timeout(
            Duration::from_secs(10),
            metrics
                .wait_for(|m| m.snapshot.is_some_and(|s| s.index >= 250) && m.purged.is_some_and(|p| p.index >= 240)),
        )
        .await
        .unwrap_or_else(|_| panic!("snapshot and purge in time: {:?}", shards.metrics(shard)))
        .expect("metrics alive");

        let mut log = LogStore::new(store, shard);
        assert!(log.try_get_log_entries(0..100).await.expect("log readable").is_empty(), "early entries purged");
        shards.shutdown().await;
        shard
    };

    let store = open_store(dir.path()).await;
    let shards = start(store, small(dir.path()), Arc::new(NoopObserver)).await;
    assert!(shards.metrics(shard).expect("hosted").snapshot.is_some(), "the snapshot is found again");
    // Checked after the restart: a build may still have been running before it.
    let files = snapshot_files(dir.path(), shard);
    assert_eq!(files.len(), 2, "one snapshot and its metadata: {files:?}");
    assert!(files[0].ends_with(".meta") && files[1].ends_with(".snap"), "{files:?}");
    assert_eq!(files[0].strip_suffix(".meta"), files[1].strip_suffix(".snap"));
    assert_eq!(shards.read(&target, |m| m.tenant(&target).map(|t| t.next_seq)), Some(Some(301)));
    let result = shards.propose(append(target, "k301")).await.expect("append after restart");
    assert!(matches!(result, CommandResult::Appended(ref o) if o[0].seq == 301 && !o[0].duplicate), "{result:?}");
    shards.shutdown().await;
}

fn normal(index: u64, commands: Vec<storage::Command>) -> Entry<raft::TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request { commands }),
    }
}

/// A state machine on a store in `dir`; the records a received snapshot names and
/// the store lacks come from `records` (its own store when `None`).
async fn machine_on(
    dir: &std::path::Path,
    observer: Arc<RecordingObserver>,
    records: Option<Store>,
) -> (Store, Arc<RwLock<ShardMachine>>, StateMachine) {
    let store = open_store(dir).await;
    let machine = Arc::new(RwLock::new(ShardMachine::load(store.clone(), 0, 1).expect("machine loads")));
    let records = Arc::new(records.unwrap_or_else(|| store.clone()));
    let sm = StateMachine::open(store.clone(), machine.clone(), observer, &dir.join("snapshots"), records)
        .expect("state machine opens");
    (store, machine, sm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_snapshot_replaces_the_shard_state() {
    let (leader_dir, follower_dir) = (TempDir::new().expect("temp dir"), TempDir::new().expect("temp dir"));
    let (a, b, gone) = (ispb("00000001"), ispb("00000002"), ispb("0000000X"));

    let (leader_store, _leader_machine, mut leader) = machine_on(leader_dir.path(), Arc::default(), None).await;
    let responses = leader
        .apply(vec![
            normal(1, vec![append(a, "a1"), append(a, "a2")]),
            normal(2, vec![append(b, "b1"), append(a, "a1")]),
        ])
        .await
        .expect("leader applies");
    assert_eq!(responses.iter().map(|r| r.results.len()).collect::<Vec<_>>(), vec![2, 2]);
    assert!(
        matches!(&responses[1].results[1], CommandResult::Appended(o) if o[0].duplicate && o[0].seq == 1),
        "a dedupe key from an earlier entry of the same batch is seen: {:?}",
        responses[1].results[1]
    );
    let snapshot = leader.get_snapshot_builder().await.build_snapshot().await.expect("snapshot builds");

    let observer = Arc::new(RecordingObserver::default());
    let (follower_store, follower_machine, mut follower) =
        machine_on(follower_dir.path(), observer.clone(), Some(leader_store.clone())).await;
    follower.apply(vec![normal(1, vec![append(gone, "x1")])]).await.expect("follower applies");
    let mut received = follower.begin_receiving_snapshot().await.expect("receiving file");
    let mut source = snapshot.snapshot;
    tokio::io::copy(&mut source, &mut *received).await.expect("snapshot copied");
    follower.install_snapshot(&snapshot.meta, received).await.expect("snapshot installs");

    {
        let guard = follower_machine.read();
        assert_eq!(guard.tenant(&a).map(|t| t.next_seq), Some(3));
        assert_eq!(guard.tenant(&b).map(|t| t.next_seq), Some(2));
        assert!(guard.tenant(&gone).is_none(), "state not in the snapshot is gone");
    }
    assert_eq!(follower_store.read_messages(&a, &[1, 2]).expect("messages").len(), 2);
    assert!(follower_store.read_messages(&gone, &[1]).expect("messages").is_empty());
    assert!(observer.woken.lock().is_superset(&[a, b, gone].into()), "every touched ISPB is woken");
    assert_eq!(observer.reasons.lock().get(&gone), Some(&storage::Wake::Streams), "all its readers look again");
    let (applied, _) = follower.applied_state().await.expect("applied state");
    assert_eq!(applied, snapshot.meta.last_log_id);
    let current = follower.get_current_snapshot().await.expect("current snapshot").expect("one exists");
    assert_eq!(current.meta, snapshot.meta);
}

/// The membership is stored when a membership entry applies, not rewritten with every
/// entry, and a state machine opened again on the store reports it with the last
/// applied log id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applied_membership_survives_reopening_though_later_applies_skip_it() {
    let dir = TempDir::new().expect("temp dir");
    let target = ispb("32074986");
    let nodes = std::collections::BTreeMap::from([(
        1u64,
        raft::PeerNode { peer_addr: "127.0.0.1:1".into(), region: "r1".into() },
    )]);
    let membership = openraft::Membership::new(vec![std::collections::BTreeSet::from([1u64])], nodes);
    let member_entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Membership(membership.clone()),
    };
    {
        let (_store, _machine, mut sm) = machine_on(dir.path(), Arc::new(RecordingObserver::default()), None).await;
        sm.apply(vec![member_entry, normal(2, vec![append(target, "a")])]).await.expect("applies");
        sm.apply(vec![normal(3, vec![append(target, "b")])]).await.expect("applies");
    }
    let (_store, machine, mut sm) = machine_on(dir.path(), Arc::new(RecordingObserver::default()), None).await;
    let (applied, stored) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied.map(|id| id.index), Some(3));
    assert_eq!(stored.log_id().map(|id| id.index), Some(1), "the membership entry's id");
    assert_eq!(stored.membership(), &membership);
    assert_eq!(machine.read().tenant(&target).map(|t| t.next_seq), Some(3));
}
