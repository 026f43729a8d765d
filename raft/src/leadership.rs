//! Leader transfer: `Shards::transfer_leadership` moves a shard's leadership to
//! another voter — before maintenance of the leader's node, or back to a node of the
//! preferred region.
//!
//! openraft 0.9 has no transfer call, so it is made of what it has. On the leader:
//! the proposer holds new proposals back (they wait in its queue, in order),
//! heartbeats and the leader's own elections stop. The followers' leader lease (the
//! longest election timeout) then runs out, and the target — asked over the peer
//! listener (`POST /peer/v1/campaign/{shard}`) — runs for election until it wins.
//! The other followers would start an election of their own only after the lease
//! *and* their election timeout, so the target is first. Whatever the outcome, the
//! old leader then resumes heartbeats, elections and proposing; proposals it can no
//! longer commit come back `NotLeader`, and clients retry on the new leader. The
//! shard takes no commands for about one lease (`election_timeout_ms`'s maximum).

use std::time::Duration;

use crate::error::Error;
use crate::peer_wire;
use crate::shards::Shards;

/// Pause between two election attempts of the target.
const CAMPAIGN_RETRY: Duration = Duration::from_millis(100);

impl Shards {
    /// On the leader of `shard`: makes voter `to` the leader, waiting at most
    /// `timeout`. Returns the leader afterwards (`to`, or this node when it already
    /// is `to`). `NotLeader` on another node, `BadRequest` when `to` is no voter,
    /// `Timeout` when `to` did not win in time (this node then leads on).
    pub async fn transfer_leadership(&self, shard: u32, to: u64, timeout: Duration) -> Result<u64, Error> {
        let raft = self.raft(shard).ok_or(Error::NotMember { shard })?;
        if !self.is_leader(shard) {
            return Err(Error::NotLeader { leader: self.leader_of(shard) });
        }
        if to == self.node_id() {
            return Ok(to);
        }
        let membership = self.metrics(shard).map(|m| m.membership_config.membership().clone()).unwrap_or_default();
        if !membership.voter_ids().any(|id| id == to) {
            let voters: Vec<u64> = membership.voter_ids().collect();
            return Err(Error::BadRequest(format!("node {to} is not a voter of shard {shard} (voters {voters:?})")));
        }
        let peer_addr = membership
            .get_node(&to)
            .map(|node| node.peer_addr.clone())
            .ok_or_else(|| Error::BadRequest(format!("node {to} has no peer address in shard {shard}")))?;
        let proposer = self.proposer(shard).ok_or(Error::NotMember { shard })?;
        tracing::info!(shard, to, "leader transfer: holding proposals, stopping heartbeats");
        proposer.hold();
        raft.runtime_config().heartbeat(false);
        raft.runtime_config().elect(false);
        let outcome = self.ask_to_campaign(&peer_addr, shard, timeout).await;
        raft.runtime_config().elect(true);
        raft.runtime_config().heartbeat(true);
        proposer.release();
        let leader = match outcome {
            Ok(Some(leader)) if leader == to => leader,
            Ok(other) => {
                tracing::warn!(shard, to, leader = ?other, "leader transfer: the target did not win");
                return Err(Error::Timeout(format!(
                    "shard {shard}: node {to} did not win the election in {timeout:?}"
                )));
            }
            Err(error) => {
                tracing::warn!(shard, to, %error, "leader transfer: the target could not be asked");
                return Err(error);
            }
        };
        tracing::info!(shard, leader, "leader transfer done");
        Ok(leader)
    }

    /// On the target of a transfer: runs for election of `shard` until this node
    /// leads or `timeout` passes; returns the leader it knows then.
    pub async fn campaign(&self, shard: u32, timeout: Duration) -> Result<Option<u64>, Error> {
        let raft = self.raft(shard).ok_or(Error::NotMember { shard })?;
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_leader(shard) && tokio::time::Instant::now() < deadline {
            raft.trigger().elect().await.map_err(|e| Error::Unavailable(format!("shard {shard}: {e}")))?;
            tokio::time::sleep(CAMPAIGN_RETRY).await;
        }
        Ok(self.leader_of(shard))
    }

    /// Handles `POST /peer/v1/campaign/{shard}` (body: bincode of the milliseconds
    /// allowed); answers the bincode of the leader known afterwards.
    pub async fn handle_campaign_rpc(&self, shard: u32, body: &[u8]) -> Result<Vec<u8>, Error> {
        if shard >= self.shard_count() {
            return Err(Error::BadRequest(format!("shard {shard} does not exist ({} shards)", self.shard_count())));
        }
        let millis: u64 = peer_wire::decode(body)?;
        let leader = self.campaign(shard, Duration::from_millis(millis)).await?;
        Ok(peer_wire::encode(&leader))
    }

    async fn ask_to_campaign(&self, peer_addr: &str, shard: u32, timeout: Duration) -> Result<Option<u64>, Error> {
        let transport = self.peer_transport();
        let url = peer_wire::campaign_url(transport.scheme, peer_addr, shard);
        let millis = timeout.as_millis() as u64;
        transport.call(&url, &millis, timeout + Duration::from_secs(2), "campaign request").await
    }
}
