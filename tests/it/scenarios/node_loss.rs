//! Node loss: under producer and puller traffic a follower stops and comes back,
//! then the shard's leader stops and comes back. Every acknowledged message is
//! delivered once, in order per stream, and both nodes catch up.

use std::time::{Duration, Instant};

use super::{assert_every_replica_stores, last_seq};
use crate::harness::{ISPB, TestCluster, Traffic, assert_delivered_once_in_order, timing};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_then_the_leader_stop_under_traffic_and_catch_up() {
    let mut cluster = TestCluster::start(&["r1", "r2", "r3"], 4).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("the shard has a leader");
    let others: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    // Clients use a node that stays up; the other follower and the leader go down.
    let (entry, follower) = (others[0], others[1]);
    let api = cluster.api(entry);
    let deadline = Instant::now() + Duration::from_secs(50);
    let traffic = Traffic::start(ISPB, api.clone(), &[api.clone(), api.clone(), api.clone()], deadline);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.stop(follower).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(follower).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.stop(leader).await;
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(leader).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (acknowledged, streams) = traffic.stop().await;
    assert!(acknowledged.len() > 20, "the producer made progress: {}", acknowledged.len());
    assert_delivered_once_in_order(&acknowledged, &streams);
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!(state.next_seq - 1, last_seq(&acknowledged), "nothing stored beyond what was acknowledged");
    assert_every_replica_stores(&cluster, ISPB, &acknowledged);
    cluster.shutdown().await;
}
