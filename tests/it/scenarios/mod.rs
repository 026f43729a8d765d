//! Failure-domain scenarios (docs/failure-domains.md): each module breaks one thing
//! an operator plans for — a node, a region, a leader's links, the disk's speed, the
//! disk's space, the store's files — under traffic, and asserts what the operator
//! relies on: nothing acknowledged is lost, clients get honest answers (201 only for
//! what is stored, 503 otherwise), and the node or cluster recovers. The playbook
//! of each (detect, mitigate, recover) is in docs/failure-domains.md.

mod corruption;
mod disk_full;
mod node_loss;
mod partitioned_leader;
mod region_loss;
mod slow_disk;

use crate::harness::{Appended, ISPB, TestCluster, TestNode, Traffic, assert_delivered_once_in_order, timing};

/// Every running replica of `ispb`'s shard stores every acknowledged message, with
/// its resource id: a node that was stopped caught up.
pub fn assert_every_replica_stores(cluster: &TestCluster, ispb: &str, acknowledged: &[Appended]) {
    let parsed = storage::Ispb::parse(ispb).expect("valid ISPB");
    let seqs: Vec<u64> = acknowledged.iter().map(|a| a.seq).collect();
    for id in cluster.running() {
        let app = cluster.member(id).app();
        if !app.shards.is_member(app.shards.shard_for(&parsed)) {
            continue;
        }
        let stored = app.store.read_messages(&parsed, &seqs).expect("read stored messages");
        let stored: Vec<(u64, String)> = stored.into_iter().map(|m| (m.seq, m.resource_id)).collect();
        let expected: Vec<(u64, String)> = acknowledged.iter().map(|a| (a.seq, a.resource_id.clone())).collect();
        assert_eq!(stored, expected, "node {id} stores every acknowledged message of {ispb}");
    }
}

/// The highest seq among `acknowledged` (0 if none).
pub fn last_seq(acknowledged: &[Appended]) -> u64 {
    acknowledged.iter().map(|a| a.seq).max().unwrap_or(0)
}

/// A single node stores every message of `ISPB` in `acknowledged`, with its
/// resource id.
pub fn assert_node_stores(node: &TestNode, acknowledged: &[Appended]) {
    let seqs: Vec<u64> = acknowledged.iter().map(|a| a.seq).collect();
    let stored: Vec<String> = node.stored(ISPB, &seqs).into_iter().map(|m| m.resource_id).collect();
    let expected: Vec<String> = acknowledged.iter().map(|a| a.resource_id.clone()).collect();
    assert_eq!(stored, expected, "the node stores every acknowledged message");
}

/// The end of a scenario on `ISPB` once the failure is over: stops `traffic` (which
/// must have been acknowledged writes), checks that everything acknowledged — by it
/// and the test's own `acknowledged` — was delivered once in order, waits for the
/// replicas to converge, checks every replica stores it all, and stops the cluster.
pub async fn settle(cluster: TestCluster, traffic: Traffic, mut acknowledged: Vec<Appended>) {
    let (produced, streams) = traffic.stop().await;
    assert!(!produced.is_empty(), "the producer's writes were acknowledged");
    acknowledged.extend(produced);
    assert_delivered_once_in_order(&acknowledged, &streams);
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert!(state.next_seq > last_seq(&acknowledged), "every acknowledged message is stored");
    assert_every_replica_stores(&cluster, ISPB, &acknowledged);
    cluster.shutdown().await;
}
