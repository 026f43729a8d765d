//! `Error`: everything that can go wrong when replicating a command, starting the
//! shard groups or handling their files. Business rejections are not errors: they
//! come back inside `storage::CommandResult`.

/// The raft crate's one error enum.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This node does not lead the shard; `leader` is the node that does, if known.
    #[error("not the leader of the shard (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The shard cannot take commands now: Raft stopped, shut down, or failed.
    #[error("shard unavailable: {0}")]
    Unavailable(String),
    /// This node does not replicate the shard: it has no group for it.
    #[error("this node does not replicate shard {shard}")]
    NotMember { shard: u32 },
    /// A peer request was malformed: unknown shard or RPC kind, undecodable body.
    #[error("bad peer request: {0}")]
    BadRequest(String),
    /// A peer message could not be decoded.
    #[error("peer message: {0}")]
    Wire(String),
    /// No leader was known in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The configuration does not make sense (e.g. zero shards).
    #[error("invalid raft configuration: {0}")]
    Config(String),
    /// Starting or initializing a Raft group failed.
    #[error("raft: {0}")]
    Raft(String),
    /// The RocksDB store failed.
    #[error("storage: {0}")]
    Storage(#[from] storage::Error),
    /// A snapshot or metadata file could not be read or written.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A snapshot metadata file could not be decoded.
    #[error("snapshot metadata: {0}")]
    Json(#[from] serde_json::Error),
}
