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

use crate::harness::{Appended, TestCluster};

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
