//! Three nodes in one process over real sockets, 4 shards replicated 3 times:
//! elections, replication, failover, partitions, restart and snapshot catch-up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft::{ClusterMap, Error, MemberNode, NoopObserver, Shards, ShardsConfig};
use storage::{Command, CommandResult, Ispb};
use tempfile::TempDir;

use crate::harness::{Cluster, cluster_config, ispb_in};
use crate::{append, open_store};

const WAIT: Duration = Duration::from_secs(20);

fn same(config: ShardsConfig) -> ShardsConfig {
    config
}

/// Appends `keys` to `ispb` through its shard's leader; returns the seqs.
async fn append_all(cluster: &Cluster, ispb: Ispb, keys: impl IntoIterator<Item = String>) -> Vec<u64> {
    let mut seqs = Vec::new();
    for key in keys {
        match cluster.propose(append(ispb, &key), WAIT).await {
            CommandResult::Appended(outcomes) => seqs.push(outcomes[0].seq),
            other => panic!("an append yields Appended, got {other:?}"),
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_elects_a_leader_and_leaders_spread() {
    let cluster = Cluster::start(3, 4, 3, same).await;
    let mut leaders = Vec::new();
    for shard in 0..4 {
        assert_eq!(cluster.map.replicas(shard).len(), 3);
        leaders.push(cluster.wait_leader(shard, &[1, 2, 3], WAIT).await);
        for id in 1..=3 {
            assert!(cluster.node(id).hosts(shard));
        }
    }
    let distinct: BTreeSet<u64> = leaders.iter().copied().collect();
    assert!(distinct.len() >= 2, "leaders spread over the nodes: {leaders:?}");
    // The first replica bootstraps its shard and so leads it.
    let first: Vec<u64> = (0..4).map(|s| cluster.map.replicas(s)[0]).collect();
    assert_eq!(leaders, first, "each shard is led by its first replica");
    for shard in 0..4 {
        let followers: Vec<u64> = (1..=3).filter(|id| *id != leaders[shard as usize]).collect();
        for id in followers {
            let result = cluster.node(id).propose(append(ispb_in(shard, 4, 0), "x")).await;
            assert!(
                matches!(result, Err(Error::NotLeader { leader: Some(l) }) if l == leaders[shard as usize]),
                "a follower names the leader: {result:?}"
            );
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_through_the_leader_reach_every_replica() {
    let cluster = Cluster::start(3, 4, 3, same).await;
    let ispbs: Vec<Ispb> = (0..4).map(|shard| ispb_in(shard, 4, 0)).collect();
    for ispb in &ispbs {
        let seqs = append_all(&cluster, *ispb, (1..=5).map(|n| format!("{ispb}-{n}"))).await;
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }
    let states = cluster.wait_converged(&ispbs, WAIT).await;
    for (ispb, (tenant, messages)) in ispbs.iter().zip(states) {
        assert_eq!(tenant.expect("tenant replicated").next_seq, 6, "{ispb}");
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[4].resource_id, format!("R{ispb}-5"));
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failure_elects_a_new_leader_without_losing_appends() {
    let mut cluster = Cluster::start(3, 4, 3, same).await;
    let shard = 1;
    let target = ispb_in(shard, 4, 0);
    let old = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    append_all(&cluster, target, (1..=10).map(|n| format!("k{n}"))).await;

    let stopping = tokio::time::Instant::now();
    cluster.stop(old).await;
    let stopped = tokio::time::Instant::now();
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let new = cluster.wait_leader(shard, &survivors, WAIT).await;
    eprintln!(
        "shard {shard}: stopping leader {old} took {:?}; {new} leads {:?} after it stopped",
        stopped - stopping,
        stopped.elapsed()
    );
    assert_ne!(new, old);
    // The read barrier: past it, the new leader's machine holds everything the old
    // leader committed; a follower names the leader instead.
    cluster.node(new).catch_up(&target).await.expect("the new leader confirms its state");
    let (tenant, _) = cluster.state_on(new, &target);
    assert_eq!(tenant.map(|t| t.next_seq), Some(11), "all ten appends applied on the new leader");
    let follower = survivors.iter().copied().find(|id| *id != new).expect("two survivors");
    let refused = cluster.node(follower).catch_up(&target).await;
    assert!(matches!(refused, Err(Error::NotLeader { leader: Some(l) }) if l == new), "{refused:?}");

    let seqs = append_all(&cluster, target, (11..=15).map(|n| format!("k{n}"))).await;
    assert_eq!(seqs, vec![11, 12, 13, 14, 15], "no committed append was lost or reordered");
    let states = cluster.wait_converged(&[target], WAIT).await;
    let (tenant, messages) = &states[0];
    assert_eq!(tenant.as_ref().map(|t| t.next_seq), Some(16));
    let keys: Vec<String> = messages.iter().map(|m| m.resource_id.clone()).collect();
    assert_eq!(keys, (1..=15).map(|n| format!("Rk{n}")).collect::<Vec<_>>());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_cannot_commit_and_catches_up_after_healing() {
    let cluster = Cluster::start(3, 4, 3, same).await;
    let shard = 2;
    let target = ispb_in(shard, 4, 0);
    let old = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    append_all(&cluster, target, (1..=3).map(|n| format!("k{n}"))).await;

    cluster.faults.isolate(old);
    // The isolated leader still believes it leads: its proposal must never succeed.
    let stranded = tokio::spawn({
        let node = cluster.node(old).clone();
        async move { node.propose(append(target, "stranded")).await }
    });
    let majority: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let new = cluster.wait_leader(shard, &majority, WAIT).await;
    assert_ne!(new, old);
    let seqs = append_all(&cluster, target, (4..=6).map(|n| format!("k{n}"))).await;
    assert_eq!(seqs, vec![4, 5, 6]);

    cluster.faults.unblock_all();
    let outcome = tokio::time::timeout(WAIT, stranded).await;
    match outcome {
        Ok(Ok(Ok(result))) => panic!("the isolated leader committed a proposal: {result:?}"),
        Ok(Ok(Err(error))) => eprintln!("stranded proposal failed as it must: {error}"),
        Ok(Err(join)) => panic!("proposal task failed: {join}"),
        Err(_) => eprintln!("stranded proposal still pending after healing"),
    }
    let states = cluster.wait_converged(&[target], WAIT).await;
    let (tenant, messages) = &states[0];
    assert_eq!(tenant.as_ref().map(|t| t.next_seq), Some(7), "the stranded append is not there");
    assert!(messages.iter().all(|m| m.resource_id != "Rstranded"));
    assert_eq!(cluster.wait_leader(shard, &[1, 2, 3], WAIT).await, new, "the healed node follows the new leader");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_from_the_log() {
    let mut cluster = Cluster::start(3, 4, 3, same).await;
    let shard = 3;
    let target = ispb_in(shard, 4, 0);
    let leader = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    append_all(&cluster, target, (1..=3).map(|n| format!("k{n}"))).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.wait_converged(&[target], WAIT).await;

    cluster.stop(follower).await;
    append_all(&cluster, target, (4..=20).map(|n| format!("k{n}"))).await;
    cluster.restart(follower).await;
    let states = cluster.wait_converged(&[target], WAIT).await;
    assert_eq!(states[0].0.as_ref().map(|t| t.next_seq), Some(21));
    assert_eq!(cluster.state_on(follower, &target), states[0], "the restarted node caught up");
    cluster.shutdown().await;
}

/// Waits until the leader of `shard` purged its log past `index` (behind a
/// snapshot), so that a follower that stopped there needs the snapshot; returns it.
async fn wait_log_purged_past(cluster: &Cluster, shard: u32, index: u64) -> u64 {
    let leader = cluster.wait_leader(shard, &cluster.running(), WAIT).await;
    let mut metrics = cluster.node(leader).raft(shard).expect("hosted").metrics();
    tokio::time::timeout(WAIT, metrics.wait_for(|m| m.purged.is_some_and(|p| p.index > index)))
        .await
        .expect("the leader purges its log behind a snapshot")
        .expect("metrics alive");
    leader
}

fn small_snapshots(config: ShardsConfig) -> ShardsConfig {
    ShardsConfig { snapshot_logs_since_last: 20, logs_to_keep: 5, ..config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot_install() {
    let mut cluster = Cluster::start(3, 4, 3, small_snapshots).await;
    let shard = 0;
    let target = ispb_in(shard, 4, 0);
    let leader = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    append_all(&cluster, target, (1..=3).map(|n| format!("k{n}"))).await;
    cluster.wait_converged(&[target], WAIT).await;
    let follower_last = cluster.node(follower).metrics(shard).and_then(|m| m.last_log_index).unwrap_or(0);

    cluster.stop(follower).await;
    append_all(&cluster, target, (4..=80).map(|n| format!("k{n}"))).await;
    // Wait until the leader purged entries the follower never received.
    wait_log_purged_past(&cluster, shard, follower_last + 1).await;

    cluster.restart(follower).await;
    let states = cluster.wait_converged(&[target], WAIT).await;
    assert_eq!(states[0].0.as_ref().map(|t| t.next_seq), Some(81));
    assert_eq!(cluster.state_on(follower, &target), states[0], "the follower's state equals the leader's");
    let snapshot = cluster.node(follower).metrics(shard).and_then(|m| m.snapshot);
    assert!(snapshot.is_some_and(|s| s.index > follower_last + 1), "the follower holds the installed snapshot");
    // Appends keep flowing to the follower by log after the install.
    append_all(&cluster, target, ["k81".to_owned()]).await;
    let states = cluster.wait_converged(&[target], WAIT).await;
    assert_eq!(states[0].0.as_ref().map(|t| t.next_seq), Some(82));
    cluster.shutdown().await;
}

/// An append of one message of `bytes` bytes that deflate cannot shrink.
fn incompressible(target: Ispb, key: &str, bytes: usize) -> Command {
    let mut command = append(target, key);
    let mut state = key.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
    let body: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    if let Command::Append { messages, .. } = &mut command {
        messages[0].body = Bytes::from(body);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_carries_state_not_messages_and_the_follower_fetches_what_it_missed() {
    const BODY: usize = 64 << 10;
    let mut cluster = Cluster::start(3, 4, 3, small_snapshots).await;
    let shard = 2;
    let target = ispb_in(shard, 4, 0);
    let leader = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    for n in 1..=40 {
        assert!(matches!(
            cluster.propose(incompressible(target, &format!("k{n}"), BODY), WAIT).await,
            CommandResult::Appended(_)
        ));
    }
    cluster.wait_converged(&[target], WAIT).await;
    let follower_last = cluster.node(follower).metrics(shard).and_then(|m| m.last_log_index).unwrap_or(0);

    cluster.stop(follower).await;
    for n in 41..=80 {
        assert!(matches!(
            cluster.propose(incompressible(target, &format!("k{n}"), BODY), WAIT).await,
            CommandResult::Appended(_)
        ));
    }
    let leader_now = wait_log_purged_past(&cluster, shard, follower_last + 1).await;
    // 80 messages of 64 KiB (5 MiB) are retained; the snapshot holds their range.
    let held = cluster.snapshot_bytes(leader_now, shard);
    assert!(held > 0 && held < 32 << 10, "the leader's snapshot is {held} bytes");

    cluster.restart(follower).await;
    let states = cluster.wait_converged(&[target], WAIT).await;
    assert_eq!(states[0].1.len(), 80, "every message is on every replica");
    assert_eq!(cluster.state_on(follower, &target), states[0], "the follower's state and messages equal the leader's");
    let installed = cluster.node(follower).metrics(shard).and_then(|m| m.snapshot);
    assert!(installed.is_some_and(|s| s.index > follower_last + 1), "the follower caught up by a snapshot");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_receives_large_entries_in_several_appends() {
    let mut cluster = Cluster::start(3, 4, 3, same).await;
    let shard = 1;
    let target = ispb_in(shard, 4, 0);
    let leader = cluster.wait_leader(shard, &[1, 2, 3], WAIT).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.stop(follower).await;
    // 24 entries of 512 KiB: 12 MiB to catch up, more than one append may carry.
    for n in 0..24u8 {
        let mut command = append(target, &format!("big{n}"));
        if let Command::Append { messages, .. } = &mut command {
            messages[0].body = Bytes::from(vec![b'a' + n % 26; 512 << 10]);
        }
        assert!(matches!(cluster.propose(command, WAIT).await, CommandResult::Appended(_)));
    }
    cluster.restart(follower).await;
    let states = cluster.wait_converged(&[target], WAIT).await;
    assert_eq!(states[0].1.len(), 24);
    assert!(states[0].1.iter().enumerate().all(|(n, m)| m.body.len() == 512 << 10 && m.body[0] == b'a' + n as u8));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_only_the_shards_it_replicates() {
    // Two nodes, rf 1: node 1 alone replicates shards 0 and 2; node 2 (never
    // started) shards 1 and 3.
    let dir = TempDir::new().expect("temp dir");
    let nodes = vec![
        MemberNode { id: 1, region: "a".into(), peer_addr: "127.0.0.1:1".into() },
        MemberNode { id: 2, region: "b".into(), peer_addr: "127.0.0.1:2".into() },
    ];
    let config = ShardsConfig {
        node_id: 1,
        cluster: ClusterMap { nodes, shards: 4, replication_factor: 1 },
        ..cluster_config(dir.path(), 4)
    };
    let store = open_store(dir.path()).await;
    let shards = Shards::start(store, config, Arc::new(NoopObserver)).await.expect("node starts");
    shards.wait_for_leaders(WAIT).await.expect("hosted shards elect");
    assert_eq!(shards.hosted_shards().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!((shards.replicas(1), shards.replicas(2)), (vec![2], vec![1]));
    assert!(shards.is_leader(0) && !shards.is_leader(1));
    assert_eq!((shards.leader_of(2), shards.leader_of(1)), (Some(1), None));

    let away = ispb_in(1, 4, 0);
    assert!(matches!(shards.propose(append(away, "a")).await, Err(Error::NotMember { shard: 1 })));
    assert!(shards.read(&away, |m| m.shard()).is_none());
    assert!(shards.machine(1).is_none() && shards.raft(3).is_none() && shards.metrics(1).is_none());
    let home = ispb_in(2, 4, 0);
    assert!(matches!(shards.propose(append(home, "h")).await, Ok(CommandResult::Appended(_))));
    assert_eq!(shards.read(&home, |m| m.tenant(&home).map(|t| t.next_seq)), Some(Some(2)));

    let vote =
        raft::peer_wire::encode(&openraft::raft::VoteRequest { vote: openraft::Vote::new(9, 2u64), last_log_id: None });
    assert!(matches!(shards.handle_peer_rpc(1, "vote", &vote).await, Err(Error::NotMember { shard: 1 })));
    assert!(matches!(shards.handle_peer_rpc(9, "vote", &vote).await, Err(Error::BadRequest(_))));
    assert!(matches!(shards.handle_peer_rpc(0, "elect", &vote).await, Err(Error::BadRequest(_))));
    assert!(matches!(shards.handle_peer_rpc(0, "append", &[1, 2, 3]).await, Err(Error::BadRequest(_))));
    // A vote for a shard it hosts is answered with an encoded Raft result.
    let answer = shards.handle_peer_rpc(0, "vote", &vote).await.expect("vote handled");
    let decoded: Result<openraft::raft::VoteResponse<u64>, openraft::error::RaftError<u64>> =
        raft::peer_wire::decode(&answer).expect("answer decodes");
    assert!(decoded.is_ok(), "{decoded:?}");
    shards.shutdown().await;
}
