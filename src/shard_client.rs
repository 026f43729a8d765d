//! `ShardClient`: how the domain services reach the shard groups. Proposals and read
//! barriers are bounded by `PROPOSE_TIMEOUT`, so a leader cut off from its replicas
//! answers "unavailable" instead of holding its clients forever; reads of applied
//! state go straight to the local state machine.

use std::time::Duration;

use storage::{Command, CommandResult, Ispb, ShardMachine};

use crate::error::Error;

/// Longest a proposal (or a read barrier) may wait for its commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's shard groups as the services use them; cheap to clone.
#[derive(Clone)]
pub struct ShardClient {
    shards: raft::Shards,
}

impl ShardClient {
    /// Wraps the node's shard groups.
    pub fn new(shards: raft::Shards) -> ShardClient {
        ShardClient { shards }
    }

    /// The shard groups themselves (forwarding, admin, readiness).
    pub fn shards(&self) -> &raft::Shards {
        &self.shards
    }

    /// Proposes a command to its ISPB's shard and waits for the applied result.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.shards.propose(command)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Error::Unavailable { reason: "the shard could not commit in time", retry_after_secs: 1 }),
        }
    }

    /// Waits until this node has applied everything the ISPB's shard committed
    /// (`raft::Shards::catch_up`).
    pub async fn catch_up(&self, ispb: &Ispb) -> Result<(), Error> {
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.shards.catch_up(ispb)).await {
            Ok(result) => Ok(result?),
            Err(_) => {
                Err(Error::Unavailable { reason: "the shard could not confirm its state in time", retry_after_secs: 1 })
            }
        }
    }

    /// Reads the applied state of the ISPB's shard, if this node hosts it.
    pub fn read<T>(&self, ispb: &Ispb, f: impl FnOnce(&ShardMachine) -> T) -> Option<T> {
        self.shards.read(ispb, f)
    }

    /// The shard of an ISPB.
    pub fn shard_for(&self, ispb: &Ispb) -> u32 {
        self.shards.shard_for(ispb)
    }
}
