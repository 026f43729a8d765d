//! Slow disk: the write-ahead log's fsync of one node is delayed
//! (`Store::inject_sync_delay`, the fault-injection knob of the node's fsync thread).
//! A slow follower costs nothing visible: the leader and the other follower make
//! the quorum. A slow leader makes every commit of its shards wait for its fsync
//! (the leader's own flush is on the path of every commit), so latency rises by at
//! least the delay; stopping the slow node moves its shards to healthy leaders and
//! brings latency back down, and the node, restarted on a healthy disk, catches up.
//! Nothing is lost or reordered throughout, and the replicas converge.

use std::time::{Duration, Instant};

use super::settle;
use crate::harness::{Api, Appended, ISPB, TestCluster, Traffic, retry_until_created, samples, timing};

/// What each slow fsync waits: ten times a commit's usual latency on the test
/// machine, far below the election timeout (a slow node still answers heartbeats).
const DELAY: Duration = Duration::from_millis(250);

/// Appends 5 times 2 messages through `api`; returns what was acknowledged and the
/// time each append took.
async fn timed_appends(api: &Api) -> (Vec<Appended>, Vec<Duration>) {
    let (mut acknowledged, mut took) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let started = Instant::now();
        acknowledged.extend(api.append(ISPB, &samples(ISPB, 2)).await);
        took.push(started.elapsed());
    }
    (acknowledged, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_leader_disk_slows_its_shard_until_the_node_stops_and_loses_nothing() {
    let mut cluster = TestCluster::start_with(&["r1", "r2", "r3"], 4, |f| f.storage.fsync = true).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("the shard has a leader");
    let followers: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    let api = cluster.api(followers[0]);
    let deadline = Instant::now() + Duration::from_secs(50);
    let traffic = Traffic::start(ISPB, api.clone(), &[api.clone(), cluster.api(followers[1])], deadline);
    let slow = |id: u64, delay: Duration| cluster.member(id).app().store.inject_sync_delay(delay);
    let mut acknowledged = Vec::new();

    // A follower's disk is slow: served as before.
    slow(followers[1], DELAY);
    acknowledged.extend(timed_appends(&api).await.0);
    slow(followers[1], Duration::ZERO);

    // The leader's disk is slow: every commit waits for it.
    slow(leader, DELAY);
    let (appended, took) = timed_appends(&api).await;
    acknowledged.extend(appended);
    assert!(took.iter().all(|t| *t >= DELAY), "each commit waited for the leader's slow fsync: {took:?}");
    assert_eq!(cluster.leader_of(shard), Some(leader), "a slow disk alone changes no leader");

    // Mitigation: the node with the slow disk stops; the shard fails over to the
    // healthy nodes and commits at their pace again.
    cluster.stop(leader).await;
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert!(followers.contains(&new_leader));
    let committed = retry_until_created(&api, ISPB, &samples(ISPB, 1)).await;
    acknowledged.extend(committed);
    let (appended, mut took) = timed_appends(&api).await;
    acknowledged.extend(appended);
    took.sort();
    assert!(took[2] < DELAY, "without the slow node, commits no longer wait for it: {took:?}");

    // The disk is replaced (the delay lifted) and the node starts again: it catches up.
    cluster.restart(leader).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle(cluster, traffic, acknowledged).await;
}
