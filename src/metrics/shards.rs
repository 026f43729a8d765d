//! Per-shard series of every Raft group this node hosts: whether it leads and
//! whether any leader is known, term, last log and applied index, each follower's
//! lag (on the leader), and the group commit's proposals and entries.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use raft::Shards;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabels {
    shard: u32,
    follower: u64,
}

type Gauges<L> = Family<L, Gauge>;

/// Registers the shard series of `shards` into `registry`.
pub fn register(shards: &Shards, registry: &mut Registry) {
    let [leader, leader_known, term, last_log, applied] = std::array::from_fn(|_| Gauges::<ShardLabels>::default());
    let [proposals, entries] = std::array::from_fn(|_| Family::<ShardLabels, Counter>::default());
    let lag = Gauges::<FollowerLabels>::default();
    for shard in shards.hosted_shards() {
        let Some(metrics) = shards.metrics(shard) else { continue };
        let labels = ShardLabels { shard };
        leader.get_or_create(&labels).set(i64::from(shards.is_leader(shard)));
        leader_known.get_or_create(&labels).set(i64::from(metrics.current_leader.is_some()));
        term.get_or_create(&labels).set(metrics.current_term as i64);
        let last_index = metrics.last_log_index.unwrap_or(0);
        last_log.get_or_create(&labels).set(last_index as i64);
        applied.get_or_create(&labels).set(metrics.last_applied.map_or(0, |id| id.index) as i64);
        if let Some((commands, batches)) = shards.proposal_stats(shard) {
            proposals.get_or_create(&labels).inc_by(commands);
            entries.get_or_create(&labels).inc_by(batches);
        }
        for (follower, matched) in metrics.replication.iter().flatten() {
            if *follower == shards.node_id() {
                continue;
            }
            let behind = last_index.saturating_sub(matched.map_or(0, |id| id.index));
            lag.get_or_create(&FollowerLabels { shard, follower: *follower }).set(behind as i64);
        }
    }
    registry.register("shard_leader", "1 when this node leads the shard", leader);
    registry.register("shard_leader_known", "1 when this node knows a leader of the shard", leader_known);
    registry.register("shard_term", "Raft term of the shard on this node", term);
    registry.register("shard_last_log_index", "Last Raft log index of the shard on this node", last_log);
    registry.register("shard_applied_index", "Last applied Raft log index of the shard on this node", applied);
    registry.register("shard_replication_lag_entries", "Log entries a follower is behind the leader", lag);
    registry.register("shard_proposals", "Commands proposed to the shard through this node", proposals);
    registry.register("shard_proposal_entries", "Raft entries the proposed commands were batched into", entries);
}
