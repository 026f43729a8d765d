//! `ClusterMap`: which nodes exist, and which of them replicate each shard.
//!
//! Placement is a pure function of the map, so every node that reads the same
//! configuration computes the same replica sets, with no coordination:
//!
//! 1. The nodes are put in a ring by interleaving the regions round-robin: regions
//!    sorted by name, nodes within a region sorted by id (`a1 b1 c1 a2 b2 c2 …`).
//! 2. Shard `s` starts at ring position `s mod n`; that node is its first replica,
//!    the bootstrap (preferred) leader. Over the shards the first replica rotates
//!    over every node, so leaders spread evenly.
//! 3. Walking the ring from there, the shard first takes nodes of regions it does not
//!    use yet, until it spans every region or has `replication_factor` nodes; then it
//!    fills up with the next nodes of the ring. With equally sized regions this is
//!    exactly the `replication_factor` consecutive ring positions; with uneven
//!    regions it still spans `min(replication_factor, regions)` regions, where plain
//!    consecutive positions might not.
//!
//! The replication factor is capped at the node count. Which losses a shard survives
//! follows: it keeps a quorum while more than half of its replicas are up. With rf 3
//! over 3+ regions every shard has one replica per region and survives the loss of
//! any one whole region; with rf 3 over 2 regions one region holds 2 of a shard's
//! replicas, so losing that region stops the shard (losing the other does not).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::types::PeerNode;

/// One node of the cluster as every node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub id: u64,
    pub region: String,
    /// `host:port` of the node's peer listener (Raft traffic).
    pub peer_addr: String,
}

/// Every node, the shard count and the replication factor. `Default` is the empty
/// map, which `ShardsConfig` reads as "one node: this one".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub nodes: Vec<MemberNode>,
    pub shards: u32,
    pub replication_factor: u32,
}

impl ClusterMap {
    /// A one-node map: `node` replicates every shard alone.
    pub fn single(node: MemberNode, shards: u32) -> ClusterMap {
        ClusterMap { nodes: vec![node], shards, replication_factor: 1 }
    }

    /// Checks that the map can place shards: at least one node and one shard, a
    /// replication factor of at least 1, node ids and peer addresses unique.
    pub fn validate(&self) -> Result<(), Error> {
        if self.nodes.is_empty() {
            return Err(Error::Config("the cluster has no nodes".into()));
        }
        if self.shards == 0 {
            return Err(Error::Config("shards must be at least 1".into()));
        }
        if self.replication_factor == 0 {
            return Err(Error::Config("replication factor must be at least 1".into()));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for node in &self.nodes {
            if !ids.insert(node.id) {
                return Err(Error::Config(format!("node id {} appears twice", node.id)));
            }
            if !addrs.insert(node.peer_addr.as_str()) {
                return Err(Error::Config(format!("peer address {} appears twice", node.peer_addr)));
            }
        }
        Ok(())
    }

    /// The replication factor in effect: the configured one, capped at the node count.
    pub fn effective_replication_factor(&self) -> usize {
        (self.replication_factor.max(1) as usize).min(self.nodes.len())
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> Option<&MemberNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes replicating `shard`, first replica (bootstrap leader) first. Distinct
    /// nodes, `effective_replication_factor()` of them; empty for an empty map.
    pub fn replicas(&self, shard: u32) -> Vec<u64> {
        let ring = self.ring();
        if ring.is_empty() {
            return Vec::new();
        }
        let want = self.effective_replication_factor();
        let start = shard as usize % ring.len();
        let walk = || (0..ring.len()).map(|step| ring[(start + step) % ring.len()]);
        let mut chosen: Vec<&MemberNode> = Vec::with_capacity(want);
        let mut regions: BTreeSet<&str> = BTreeSet::new();
        for node in walk() {
            if chosen.len() == want {
                break;
            }
            if regions.insert(node.region.as_str()) {
                chosen.push(node);
            }
        }
        for node in walk() {
            if chosen.len() == want {
                break;
            }
            if !chosen.iter().any(|c| c.id == node.id) {
                chosen.push(node);
            }
        }
        chosen.into_iter().map(|n| n.id).collect()
    }

    /// The initial membership of `shard`'s group: its replicas and where they are.
    pub fn members(&self, shard: u32) -> BTreeMap<u64, PeerNode> {
        self.replicas(shard)
            .into_iter()
            .filter_map(|id| self.node(id))
            .map(|n| (n.id, PeerNode { peer_addr: n.peer_addr.clone(), region: n.region.clone() }))
            .collect()
    }

    /// The nodes in ring order: regions interleaved round-robin (regions by name,
    /// nodes within a region by id).
    fn ring(&self) -> Vec<&MemberNode> {
        let mut by_region: BTreeMap<&str, Vec<&MemberNode>> = BTreeMap::new();
        for node in &self.nodes {
            by_region.entry(node.region.as_str()).or_default().push(node);
        }
        for nodes in by_region.values_mut() {
            nodes.sort_by_key(|n| n.id);
        }
        let deepest = by_region.values().map(Vec::len).max().unwrap_or(0);
        let mut ring = Vec::with_capacity(self.nodes.len());
        for depth in 0..deepest {
            ring.extend(by_region.values().filter_map(|nodes| nodes.get(depth).copied()));
        }
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, region: &str) -> MemberNode {
        MemberNode { id, region: region.into(), peer_addr: format!("10.0.0.{id}:7400") }
    }

    fn map(nodes: Vec<MemberNode>, shards: u32, rf: u32) -> ClusterMap {
        ClusterMap { nodes, shards, replication_factor: rf }
    }

    fn regions_of(map: &ClusterMap, shard: u32) -> BTreeSet<String> {
        map.replicas(shard).iter().map(|id| map.node(*id).expect("replica is a node").region.clone()).collect()
    }

    #[test]
    fn every_node_computes_the_same_map_whatever_the_listing_order() {
        let nodes = vec![node(3, "rj"), node(1, "sp"), node(5, "sp"), node(2, "rj"), node(4, "mg")];
        let a = map(nodes.clone(), 32, 3);
        let mut reversed = nodes;
        reversed.reverse();
        let b = map(reversed, 32, 3);
        for shard in 0..32 {
            assert_eq!(a.replicas(shard), b.replicas(shard), "shard {shard}");
            assert_eq!(a.members(shard), b.members(shard), "shard {shard}");
        }
    }

    #[test]
    fn ring_interleaves_regions_by_name_and_nodes_by_id() {
        let m = map(vec![node(4, "b"), node(1, "a"), node(3, "a"), node(2, "b"), node(9, "c")], 1, 1);
        let ring: Vec<u64> = m.ring().iter().map(|n| n.id).collect();
        assert_eq!(ring, vec![1, 2, 9, 3, 4]);
    }

    #[test]
    fn replica_sets_have_distinct_nodes_and_the_right_size() {
        for (count, rf) in [(1, 1), (3, 3), (5, 3), (7, 5), (4, 2)] {
            let nodes = (1..=count).map(|id| node(id, ["x", "y", "z"][id as usize % 3])).collect();
            let m = map(nodes, 64, rf);
            for shard in 0..64 {
                let replicas = m.replicas(shard);
                let distinct: BTreeSet<u64> = replicas.iter().copied().collect();
                assert_eq!(replicas.len(), rf as usize, "{count} nodes, rf {rf}, shard {shard}");
                assert_eq!(distinct.len(), replicas.len(), "{count} nodes, rf {rf}, shard {shard}");
            }
        }
    }

    #[test]
    fn three_regions_of_one_node_put_every_shard_in_all_three() {
        let m = map(vec![node(1, "sp"), node(2, "rj"), node(3, "mg")], 16, 3);
        for shard in 0..16 {
            assert_eq!(regions_of(&m, shard).len(), 3, "shard {shard}");
        }
    }

    #[test]
    fn two_regions_with_rf_3_use_both_even_when_uneven() {
        for nodes in [
            vec![node(1, "a"), node(2, "a"), node(3, "b")],
            vec![node(1, "a"), node(2, "a"), node(3, "a"), node(4, "b")],
            vec![node(1, "a"), node(2, "b"), node(3, "a"), node(4, "b"), node(5, "a"), node(6, "b")],
        ] {
            let m = map(nodes, 24, 3);
            for shard in 0..24 {
                assert_eq!(regions_of(&m, shard).len(), 2, "shard {shard} of {:?}", m.nodes);
            }
        }
    }

    #[test]
    fn balanced_regions_take_consecutive_ring_positions() {
        let m = map(vec![node(1, "a"), node(2, "b"), node(3, "a"), node(4, "b"), node(5, "a"), node(6, "b")], 6, 3);
        // Ring: 1 2 3 4 5 6 (a1 b1 a2 b2 a3 b3).
        assert_eq!(m.replicas(0), vec![1, 2, 3]);
        assert_eq!(m.replicas(4), vec![5, 6, 1]);
        assert_eq!(m.replicas(5), vec![6, 1, 2]);
    }

    #[test]
    fn first_replicas_spread_evenly_over_the_nodes() {
        let m = map((1..=5).map(|id| node(id, if id % 2 == 0 { "a" } else { "b" })).collect(), 40, 3);
        let mut leads: BTreeMap<u64, u32> = BTreeMap::new();
        for shard in 0..40 {
            *leads.entry(m.replicas(shard)[0]).or_default() += 1;
        }
        assert_eq!(leads.len(), 5);
        assert!(leads.values().all(|&n| n == 8), "{leads:?}");

        let uneven = map((1..=3).map(|id| node(id, "r")).collect(), 16, 3);
        let mut leads: BTreeMap<u64, u32> = BTreeMap::new();
        for shard in 0..16 {
            *leads.entry(uneven.replicas(shard)[0]).or_default() += 1;
        }
        assert!(leads.values().all(|&n| n == 5 || n == 6), "{leads:?}");
    }

    #[test]
    fn replication_factor_is_capped_at_the_node_count() {
        let m = map(vec![node(1, "a"), node(2, "b")], 4, 3);
        assert_eq!(m.effective_replication_factor(), 2);
        assert!((0..4).all(|s| m.replicas(s).len() == 2));
        assert_eq!(map(Vec::new(), 4, 3).replicas(0), Vec::<u64>::new());
    }

    #[test]
    fn members_carry_addresses_and_regions() {
        let m = map(vec![node(1, "a"), node(2, "b"), node(3, "c")], 4, 2);
        let members = m.members(1);
        assert_eq!(members.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(members[&2], PeerNode { peer_addr: "10.0.0.2:7400".into(), region: "b".into() });
    }

    #[test]
    fn validate_refuses_what_cannot_be_placed() {
        assert!(map(vec![node(1, "a")], 4, 1).validate().is_ok());
        assert!(map(Vec::new(), 4, 1).validate().is_err());
        assert!(map(vec![node(1, "a")], 0, 1).validate().is_err());
        assert!(map(vec![node(1, "a")], 4, 0).validate().is_err());
        assert!(map(vec![node(1, "a"), node(1, "b")], 4, 1).validate().is_err());
        let mut same_addr = node(2, "b");
        same_addr.peer_addr = node(1, "a").peer_addr;
        assert!(map(vec![node(1, "a"), same_addr], 4, 1).validate().is_err());
    }
}
