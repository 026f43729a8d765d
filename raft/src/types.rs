//! The openraft type configuration of pixstream and the payloads that travel in a
//! shard's log: a `Request` carries a group-committed batch of commands, a
//! `Response` their results in the same order.

use std::fmt;

use serde::{Deserialize, Serialize};
use storage::{Command, CommandResult};

openraft::declare_raft_types!(
    /// The openraft types of every shard group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = PeerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log id of a shard's log.
pub type LogId = openraft::LogId<u64>;
/// The membership as last applied, with the log id that carried it.
pub type StoredMembership = openraft::StoredMembership<u64, PeerNode>;
/// Metadata of a shard snapshot.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, PeerNode>;
/// Metrics of one shard group.
pub type Metrics = openraft::RaftMetrics<u64, PeerNode>;
/// One shard group.
pub type Raft = openraft::Raft<TypeConfig>;

/// One normal log entry: commands of one shard, applied in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub commands: Vec<Command>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({} commands)", self.commands.len())
    }
}

/// The results of a `Request`, one per command, in order. Blank and membership
/// entries produce an empty response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub results: Vec<CommandResult>,
}

/// What the cluster knows about a node: where its peer listener is and its region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    pub peer_addr: String,
    pub region: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.peer_addr, self.region)
    }
}
