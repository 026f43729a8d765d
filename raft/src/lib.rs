//! `pixstream-raft` (imported as `raft`): replication of the shard state machines.
//!
//! It owns the openraft type configuration, the Raft log store and the state-machine
//! adapter over the node's shared RocksDB `storage::Store`, shard placement over the
//! cluster's nodes, the peer transport between replicas (client and the handler the
//! server's peer listener calls), group commit of proposals, and `Shards`: the
//! registry of the openraft groups this node replicates, routing ISPB → shard →
//! group.
//!
//! Layout:
//! - `error`            — `Error`, this crate's one error enum.
//! - `types`            — `TypeConfig` (openraft types), `Request`, `Response`, `PeerNode`.
//! - `meta`             — typed access to the per-shard records in `RAFT_META`.
//! - `log_store`        — `LogStore`: one shard's Raft log and vote in RocksDB.
//! - `snapshot_dir`     — `SnapshotDir`: one shard's snapshot files on disk.
//! - `snapshot_builder` — `SnapshotBuilder`: dumps a consistent point of a shard.
//! - `snapshot_install` — installs a received snapshot, fetching the records it lacks.
//! - `snapshot_trigger` — snapshots once the log outgrows the last snapshot.
//! - `state_machine`    — `StateMachine`: applies committed entries to a `ShardMachine`.
//! - `placement`        — `ClusterMap`: nodes, regions, and each shard's replica set.
//! - `peer_wire`        — the peer RPC format: URLs and bincode bodies.
//! - `network`          — `PeerNetwork`: sends Raft RPCs to other nodes over HTTP/2.
//! - `faults`           — `NetworkFaults`: in-process link cutting and delays (tests).
//! - `peer_rpc`         — `Shards::handle_peer_rpc`: the receiving side of the RPCs.
//! - `record_fetch`     — the records a received snapshot names and this node lacks.
//! - `membership`       — online membership changes: `Shards::reconcile_members` etc.
//! - `backup`           — `Shards::backup`: an online, consistent copy of this node.
//! - `leadership`       — `Shards::transfer_leadership`: moving a shard's leader.
//! - `observer`         — `ApplyObserver`: told which ISPBs to wake after each apply.
//! - `proposer`         — group commit: many proposals become one Raft entry.
//! - `shards`           — `Shards` and `ShardsConfig`: every shard group of this node.
//!
//! Rule: this crate depends on `storage`, never on the server; it knows nothing of
//! axum, the public HTTP API or XML (its only HTTP is the peer RPC client). The state
//! machine itself (what a command does) lives in `storage`;
//! here we only decide *when* a command is applied: after Raft committed it.

pub mod backup;
pub mod error;
pub mod faults;
pub mod leadership;
pub mod log_store;
pub mod membership;
pub(crate) mod meta;
pub mod network;
pub mod observer;
mod peer_rpc;
pub mod peer_wire;
pub mod placement;
pub(crate) mod proposer;
pub mod record_fetch;
pub mod shards;
pub mod snapshot_builder;
pub mod snapshot_dir;
mod snapshot_install;
pub(crate) mod snapshot_trigger;
pub mod state_machine;
pub mod types;

pub use backup::{ShardBackup, forget_leadership};
pub use error::Error;
pub use faults::NetworkFaults;
pub use log_store::LogStore;
pub use membership::MembershipAnswer;
pub use network::{PeerNetwork, PeerTransport};
pub use observer::{ApplyObserver, NoopObserver};
pub use openraft::ServerState;
pub use peer_wire::{CAMPAIGN_PATH, MEMBERSHIP_PATH, PEER_RAFT_PATH, RpcKind};
pub use placement::{ClusterMap, MemberNode};
pub use record_fetch::{PeerRecords, RecordSource};
pub use shards::{Shards, ShardsConfig};
pub use snapshot_builder::SnapshotBuilder;
pub use snapshot_dir::SnapshotDir;
pub use state_machine::StateMachine;
pub use types::{LogId, Metrics, PeerNode, Raft, Request, Response, SnapshotMeta, StoredMembership, TypeConfig};
