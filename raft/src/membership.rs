//! Online membership changes: moving shard replicas between nodes while traffic runs.
//!
//! After bootstrap the Raft membership of each group, not the config, says which
//! nodes replicate a shard. A change is a *desired* membership (node id → `PeerNode`)
//! handed to the shard's leader, which reconciles the group to it
//! (`Shards::reconcile_members`): every desired node that is not a voter yet is added
//! as a learner and the leader waits until it caught up (log replication or snapshot
//! install), then the voters are replaced in one joint-consensus change; voters not
//! desired are removed (a removed leader steps down once the change is committed) and
//! left-over learners are dropped. Reconciling to the membership the group already
//! has changes nothing, so a change can be retried until it reports success.
//!
//! Any node can start a change (`Shards::change_members`): when it does not lead the
//! shard it sends the desired membership to the leader's peer listener
//! (`POST /peer/v1/membership/{shard}`, bincode, see `wire`), learning the leader's
//! address from the Raft membership, and retries on "not the leader" and transient
//! failures until its deadline. `Shards::apply_cluster` does this for every shard with
//! the placement of a complete node list.
//!
//! The node being removed should be stopped only after the change reported success:
//! until then it may still be needed for a quorum.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::peer_wire;
use crate::placement::ClusterMap;
use crate::shards::Shards;
use crate::types::PeerNode;

/// Longest a new learner may take to catch up before it is made a voter.
const LEARNER_CATCH_UP: Duration = Duration::from_secs(60);
/// Longest one membership change may take to commit.
const CHANGE_COMMIT: Duration = Duration::from_secs(30);
/// Pause between two attempts of `change_members`.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The answer of a node to a membership request (the body of a 200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipAnswer {
    /// The group now has exactly these voters.
    Done { voters: Vec<u64> },
    /// This node does not lead the shard; the leader it knows, and where it listens.
    NotLeader { leader: Option<u64>, leader_addr: Option<String> },
    /// The change failed for now (no quorum, another change in progress, timeout).
    Failed { reason: String },
}

type WriteError = RaftError<u64, ClientWriteError<u64, PeerNode>>;

impl Shards {
    /// The voters of `shard` as this node knows them (empty when it runs no group or
    /// was never added to one).
    pub fn voters(&self, shard: u32) -> Vec<u64> {
        self.metrics(shard).map(|m| m.membership_config.membership().voter_ids().collect()).unwrap_or_default()
    }

    /// Whether this node is in `shard`'s Raft membership (voter or learner).
    pub fn is_member(&self, shard: u32) -> bool {
        self.metrics(shard).is_some_and(|m| m.membership_config.membership().get_node(&self.node_id()).is_some())
    }

    /// The peer address of `shard`'s leader from the Raft membership: also right for
    /// nodes added after this node's config was written. `None` when the leader is
    /// unknown, is this node, or this node runs no group for the shard.
    pub fn leader_peer_addr(&self, shard: u32) -> Option<String> {
        let metrics = self.metrics(shard)?;
        let leader = metrics.current_leader.filter(|l| *l != self.node_id())?;
        metrics.membership_config.membership().get_node(&leader).map(|n| n.peer_addr.clone())
    }

    /// Peer addresses of the other nodes in `shard`'s Raft membership.
    pub fn member_peer_addrs(&self, shard: u32) -> Vec<String> {
        let Some(metrics) = self.metrics(shard) else {
            return Vec::new();
        };
        let me = self.node_id();
        metrics
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != me)
            .map(|(_, node)| node.peer_addr.clone())
            .collect()
    }

    /// On the leader of `shard`: makes the group's membership exactly `desired` (see
    /// the module doc). Returns the voters afterwards. `NotLeader` on another
    /// replica, `NotMember` without a group, `Unavailable` while another change runs
    /// or the leader cannot commit, `Timeout` when a learner does not catch up.
    pub async fn reconcile_members(&self, shard: u32, desired: BTreeMap<u64, PeerNode>) -> Result<Vec<u64>, Error> {
        if desired.is_empty() {
            return Err(Error::BadRequest(format!("shard {shard}: the desired membership is empty")));
        }
        let raft = self.raft(shard).ok_or(Error::NotMember { shard })?;
        let not_leader = || Error::NotLeader { leader: self.leader_of(shard).filter(|l| *l != self.node_id()) };
        if !self.is_leader(shard) {
            return Err(not_leader());
        }
        let wanted: BTreeSet<u64> = desired.keys().copied().collect();
        let membership = self.current_membership(shard);
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let settled = membership.get_joint_config().len() == 1 && voters == wanted;
        let mut changed = false;
        if !settled {
            for (id, node) in desired.iter().filter(|(id, _)| !voters.contains(id)) {
                tracing::info!(shard, node = id, peer_addr = %node.peer_addr, "adding a learner");
                match tokio::time::timeout(LEARNER_CATCH_UP, raft.add_learner(*id, node.clone(), true)).await {
                    Ok(result) => result.map_err(|e| write_error(shard, e))?,
                    Err(_) => {
                        return Err(Error::Timeout(format!(
                            "shard {shard}: node {id} did not catch up within {LEARNER_CATCH_UP:?}"
                        )));
                    }
                };
            }
            tracing::info!(shard, from = ?voters, to = ?wanted, "changing voters");
            self.commit_change(shard, &raft, ChangeMembers::ReplaceAllVoters(wanted.clone())).await?;
            changed = true;
        }
        let membership = self.current_membership(shard);
        let stale: BTreeSet<u64> = membership.learner_ids().filter(|id| !wanted.contains(id)).collect();
        if !stale.is_empty() && self.is_leader(shard) {
            tracing::info!(shard, learners = ?stale, "removing left-over learners");
            self.commit_change(shard, &raft, ChangeMembers::RemoveNodes(stale)).await?;
            changed = true;
        }
        let voters: Vec<u64> = self.current_membership(shard).voter_ids().collect();
        if changed {
            tracing::info!(shard, ?voters, "membership changed");
        }
        Ok(voters)
    }

    /// Handles `POST /peer/v1/membership/{shard}`: `body` is the bincode of the
    /// desired membership; the answer is the bincode of a `MembershipAnswer`. Only a
    /// body that does not decode (or a shard that does not exist) is an `Err`.
    pub async fn handle_membership_rpc(&self, shard: u32, body: &[u8]) -> Result<Vec<u8>, Error> {
        if shard >= self.shard_count() {
            return Err(Error::BadRequest(format!("shard {shard} does not exist ({} shards)", self.shard_count())));
        }
        let desired: BTreeMap<u64, PeerNode> = peer_wire::decode(body)
            .map_err(|e| Error::BadRequest(format!("membership body for shard {shard}: {e}")))?;
        let answer = match self.reconcile_members(shard, desired).await {
            Ok(voters) => MembershipAnswer::Done { voters },
            Err(Error::NotLeader { leader }) => {
                MembershipAnswer::NotLeader { leader, leader_addr: self.leader_peer_addr(shard) }
            }
            Err(Error::NotMember { .. }) => MembershipAnswer::NotLeader { leader: None, leader_addr: None },
            Err(error @ Error::BadRequest(_)) => return Err(error),
            Err(error) => MembershipAnswer::Failed { reason: error.to_string() },
        };
        Ok(peer_wire::encode(&answer))
    }

    /// Makes `shard`'s membership exactly `desired` through its leader, wherever it
    /// is, retrying until `timeout`. Returns the voters afterwards.
    pub async fn change_members(
        &self,
        shard: u32,
        desired: &BTreeMap<u64, PeerNode>,
        timeout: Duration,
    ) -> Result<Vec<u64>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut hint: Option<String> = None;
        let mut last_error: String;
        for attempt in 0usize.. {
            if self.is_leader(shard) {
                match tokio::time::timeout_at(deadline, self.reconcile_members(shard, desired.clone())).await {
                    Ok(Ok(voters)) => return Ok(voters),
                    Ok(Err(error @ (Error::BadRequest(_) | Error::NotMember { .. }))) => return Err(error),
                    Ok(Err(error)) => last_error = error.to_string(),
                    Err(_) => last_error = "the local change did not finish".into(),
                }
            } else if let Some(addr) = hint.take().or_else(|| self.pick_target(shard, desired, attempt)) {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                match self.send_membership(&addr, shard, desired, remaining).await {
                    Ok(MembershipAnswer::Done { voters }) => return Ok(voters),
                    Ok(MembershipAnswer::NotLeader { leader_addr, .. }) => {
                        last_error = format!("{addr} does not lead the shard");
                        hint = leader_addr;
                    }
                    Ok(MembershipAnswer::Failed { reason }) => last_error = format!("{addr}: {reason}"),
                    Err(error) => last_error = format!("{addr}: {error}"),
                }
            } else {
                last_error = "no node of the shard is known".into();
            }
            if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                return Err(Error::Timeout(format!("shard {shard}: {last_error}")));
            }
            if hint.is_none() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        unreachable!("the attempt loop only ends by returning")
    }

    /// Reconciles every shard to the placement of `map` (the complete desired node
    /// list), all shards at once; each shard's result, by shard.
    pub async fn apply_cluster(
        &self,
        map: &ClusterMap,
        timeout: Duration,
    ) -> Result<Vec<Result<Vec<u64>, Error>>, Error> {
        map.validate()?;
        if map.shards != self.shard_count() {
            return Err(Error::Config(format!(
                "the map has {} shards, the cluster {}",
                map.shards,
                self.shard_count()
            )));
        }
        let mut tasks = tokio::task::JoinSet::new();
        for shard in 0..map.shards {
            let (shards, desired) = (self.clone(), map.members(shard));
            tasks.spawn(async move { (shard, shards.change_members(shard, &desired, timeout).await) });
        }
        let mut results: Vec<Result<Vec<u64>, Error>> =
            (0..map.shards).map(|_| Err(Error::Unavailable("the change task did not finish".into()))).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((shard, result)) => results[shard as usize] = result,
                Err(error) => tracing::error!(%error, "a membership change task failed"),
            }
        }
        Ok(results)
    }

    /// Where to send attempt `attempt` when the leader is unknown: the known leader,
    /// else the other members this node knows of, the config's nodes, and the
    /// desired nodes, in turn.
    fn pick_target(&self, shard: u32, desired: &BTreeMap<u64, PeerNode>, attempt: usize) -> Option<String> {
        if let Some(addr) = self.leader_peer_addr(shard) {
            return Some(addr);
        }
        let me = self.node_id();
        let own = self.cluster().node(me).map(|n| n.peer_addr.clone());
        let mut candidates: Vec<String> = self.member_peer_addrs(shard);
        candidates.extend(self.cluster().nodes.iter().filter(|n| n.id != me).map(|n| n.peer_addr.clone()));
        candidates.extend(desired.iter().filter(|(id, _)| **id != me).map(|(_, n)| n.peer_addr.clone()));
        let mut seen = BTreeSet::new();
        candidates.retain(|a| Some(a) != own.as_ref() && seen.insert(a.clone()));
        if candidates.is_empty() {
            return None;
        }
        Some(candidates.swap_remove(attempt % candidates.len()))
    }

    /// Sends one membership request to the node at `peer_addr`.
    async fn send_membership(
        &self,
        peer_addr: &str,
        shard: u32,
        desired: &BTreeMap<u64, PeerNode>,
        timeout: Duration,
    ) -> Result<MembershipAnswer, Error> {
        let transport = self.peer_transport();
        let url = peer_wire::membership_url(transport.scheme, peer_addr, shard);
        transport.call(&url, desired, timeout.max(Duration::from_millis(100)), "membership request").await
    }

    /// The membership `shard`'s group has now, as this node knows it.
    fn current_membership(&self, shard: u32) -> openraft::Membership<u64, PeerNode> {
        self.metrics(shard).map(|m| m.membership_config.membership().clone()).unwrap_or_default()
    }

    /// Commits one membership change, bounded by `CHANGE_COMMIT`.
    async fn commit_change(
        &self,
        shard: u32,
        raft: &crate::types::Raft,
        change: ChangeMembers<u64, PeerNode>,
    ) -> Result<(), Error> {
        match tokio::time::timeout(CHANGE_COMMIT, raft.change_membership(change, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(write_error(shard, e)),
            Err(_) => Err(Error::Unavailable(format!("shard {shard}: the membership change did not commit in time"))),
        }
    }
}

/// Maps an openraft write error of a membership change to this crate's error.
fn write_error(shard: u32, error: WriteError) -> Error {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::NotLeader { leader: f.leader_id },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(e))) => {
            Error::Unavailable(format!("shard {shard}: another membership change is in progress: {e}"))
        }
        RaftError::APIError(e) => Error::Raft(format!("shard {shard}: membership change: {e}")),
        RaftError::Fatal(e) => Error::Unavailable(format!("shard {shard}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        for answer in [
            MembershipAnswer::Done { voters: vec![2, 3, 4] },
            MembershipAnswer::NotLeader { leader: Some(3), leader_addr: Some("10.0.0.3:7400".into()) },
            MembershipAnswer::NotLeader { leader: None, leader_addr: None },
            MembershipAnswer::Failed { reason: "no quorum".into() },
        ] {
            let back: MembershipAnswer = peer_wire::decode(&peer_wire::encode(&answer)).expect("decodes");
            assert_eq!(back, answer);
        }
        let desired: BTreeMap<u64, PeerNode> =
            [(4, PeerNode { peer_addr: "10.0.0.4:7400".into(), region: "mg".into() })].into_iter().collect();
        let back: BTreeMap<u64, PeerNode> = peer_wire::decode(&peer_wire::encode(&desired)).expect("decodes");
        assert_eq!(back, desired);
    }
}
