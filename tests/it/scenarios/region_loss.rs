//! Region loss: five nodes in regions r1 (nodes 1, 2), r2 (3, 4) and r3 (5); with
//! replication factor 3 every shard has one replica per region. Both r1 nodes stop
//! under traffic on an ISPB of every shard: every shard keeps a quorum, elects a
//! leader where needed and keeps serving; nothing acknowledged is lost; the region
//! comes back and catches up.

use std::time::{Duration, Instant};

use super::{assert_every_replica_stores, last_seq};
use crate::harness::{TestCluster, Traffic, assert_delivered_once_in_order, timing};

const REGIONS: [&str; 5] = ["r1", "r1", "r2", "r2", "r3"];
const SHARDS: u32 = 4;

/// One ISPB on each shard.
fn ispb_per_shard(cluster: &TestCluster) -> Vec<String> {
    (0..SHARDS)
        .map(|shard| {
            (10_000_000u32..)
                .map(|n| n.to_string())
                .find(|ispb| cluster.shard_of(ispb) == shard)
                .expect("an ISPB on every shard")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_every_node_of_a_region_keeps_every_shard_serving() {
    let mut cluster = TestCluster::start(&REGIONS, SHARDS).await;
    let ispbs = ispb_per_shard(&cluster);
    let deadline = Instant::now() + Duration::from_secs(50);
    // Producers and pullers reach the nodes of the regions that stay.
    let traffic: Vec<Traffic> = ispbs
        .iter()
        .enumerate()
        .map(|(i, ispb)| {
            let producer = cluster.api(3 + (i as u64 % 3));
            Traffic::start(ispb, producer, &[cluster.api(4), cluster.api(5)], deadline)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cluster.stop(1).await;
    cluster.stop(2).await;
    cluster.wait_for_leaders(timing::FAILOVER).await;
    // What was stored when the region went: later seqs were acknowledged without it.
    let stored_at_loss: Vec<u64> = ispbs
        .iter()
        .map(|ispb| cluster.tenant_views(ispb).iter().filter_map(|(_, t)| t.as_ref()).map(|t| t.next_seq).max())
        .map(|next| next.expect("a replica holds the tenant") - 1)
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    cluster.restart(1).await;
    cluster.restart(2).await;
    let mut outcomes = Vec::new();
    for t in traffic {
        outcomes.push(t.stop().await);
    }
    for ((ispb, (acknowledged, streams)), at_loss) in ispbs.iter().zip(&outcomes).zip(stored_at_loss) {
        assert!(last_seq(acknowledged) > at_loss, "{ispb}: writes were acknowledged while r1 was down");
        assert_delivered_once_in_order(acknowledged, streams);
        let state = cluster.wait_converged(ispb, timing::CONVERGE).await;
        assert_eq!(state.next_seq - 1, last_seq(acknowledged), "{ispb}: every stored message was acknowledged");
        assert_every_replica_stores(&cluster, ispb, acknowledged);
    }
    cluster.shutdown().await;
}
