//! `Shards`: every shard group of this node, and `ShardsConfig`, how to run them.
//!
//! Each shard is one openraft group over the shared RocksDB store: a `LogStore`,
//! a `StateMachine` around the shard's `ShardMachine`, and a group-commit proposer.
//! Today every group has one member, this node; a restart finds the groups already
//! initialized and resumes them as they were.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use storage::{Command, CommandResult, Ispb, ShardMachine, Store, shard_of};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::log_store::LogStore;
use crate::network::PeerNetwork;
use crate::observer::ApplyObserver;
use crate::proposer::Proposer;
use crate::state_machine::StateMachine;
use crate::types::{Metrics, PeerNode, Raft};

/// How to run the shard groups of this node.
#[derive(Clone, Debug)]
pub struct ShardsConfig {
    /// This node's id in every group.
    pub node_id: u64,
    /// Number of shards (fixed for the life of the data: it places every ISPB).
    pub shards: u32,
    /// Where peers reach this node.
    pub peer_addr: String,
    /// This node's region label.
    pub region: String,
    /// Root of the snapshot files (`shard-<N>/` below it).
    pub snapshot_dir: PathBuf,
    /// Leader heartbeat interval. Slow on purpose: many groups share a node.
    pub heartbeat_ms: u64,
    /// Election timeout range (min, max).
    pub election_timeout_ms: (u64, u64),
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind a snapshot (for lagging followers).
    pub logs_to_keep: u64,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            node_id: 1,
            shards: 16,
            peer_addr: "127.0.0.1:7400".into(),
            region: "local".into(),
            snapshot_dir: PathBuf::from("data/snapshots"),
            heartbeat_ms: 500,
            election_timeout_ms: (1500, 3000),
            snapshot_logs_since_last: 20_000,
            logs_to_keep: 1_000,
        }
    }
}

impl ShardsConfig {
    fn raft_config(&self, shard: u32) -> Result<Arc<openraft::Config>, Error> {
        let config = openraft::Config {
            cluster_name: format!("shard-{shard}"),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_ms.0,
            election_timeout_max: self.election_timeout_ms.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.logs_to_keep,
            ..Default::default()
        };
        Ok(Arc::new(config.validate().map_err(|e| Error::Config(e.to_string()))?))
    }
}

/// The shard groups of this node; cheap to clone.
#[derive(Clone)]
pub struct Shards {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: u64,
    store: Store,
    groups: Vec<Group>,
    cancel: CancellationToken,
    proposer_tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One shard's group on this node.
struct Group {
    raft: Raft,
    machine: Arc<RwLock<ShardMachine>>,
    proposer: Proposer,
}

impl Shards {
    /// Loads every shard from `store` and starts its group; a shard that was never
    /// initialized becomes a one-member group of this node.
    pub async fn start(store: Store, config: ShardsConfig, observer: Arc<dyn ApplyObserver>) -> Result<Shards, Error> {
        if config.shards == 0 {
            return Err(Error::Config("shards must be at least 1".into()));
        }
        let cancel = CancellationToken::new();
        let mut groups = Vec::with_capacity(config.shards as usize);
        let mut proposer_tasks = Vec::with_capacity(config.shards as usize);
        for shard in 0..config.shards {
            match start_group(&store, &config, shard, &observer, &cancel).await {
                Ok((group, task)) => {
                    groups.push(group);
                    proposer_tasks.push(task);
                }
                Err(error) => {
                    tracing::error!(shard, %error, "shard failed to start; stopping the others");
                    cancel.cancel();
                    for group in &groups {
                        let _ = group.raft.shutdown().await;
                    }
                    return Err(error);
                }
            }
        }
        tracing::info!(node_id = config.node_id, shards = config.shards, "shard groups started");
        Ok(Shards {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                store,
                groups,
                cancel,
                proposer_tasks: Mutex::new(proposer_tasks),
            }),
        })
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.inner.groups.len() as u32
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The shard of `ispb`.
    pub fn shard_for(&self, ispb: &Ispb) -> u32 {
        shard_of(ispb, self.shard_count())
    }

    /// Replicates `command` in its ISPB's shard and returns what applying it produced,
    /// once it is committed.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        let shard = self.shard_for(command.ispb());
        self.group(shard).proposer.propose(command).await
    }

    /// Runs `f` on the machine of `ispb`'s shard under its read lock. Keep `f` short:
    /// applies wait for it.
    pub fn read<T>(&self, ispb: &Ispb, f: impl FnOnce(&ShardMachine) -> T) -> T {
        let guard = self.group(self.shard_for(ispb)).machine.read();
        f(&guard)
    }

    /// The machine of `shard`. Panics if `shard >= shard_count()`.
    pub fn machine(&self, shard: u32) -> Arc<RwLock<ShardMachine>> {
        self.group(shard).machine.clone()
    }

    /// The Raft group of `shard` (admin: snapshots, metrics, leadership). Panics if
    /// `shard >= shard_count()`.
    pub fn raft(&self, shard: u32) -> Raft {
        self.group(shard).raft.clone()
    }

    /// Whether this node leads `shard` now (false for an unknown shard).
    pub fn is_leader(&self, shard: u32) -> bool {
        self.inner.groups.get(shard as usize).is_some_and(|group| {
            let metrics = group.raft.metrics();
            let metrics = metrics.borrow();
            metrics.state == ServerState::Leader && metrics.current_leader == Some(self.inner.node_id)
        })
    }

    /// Waits until every shard has a known leader.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        for (shard, group) in self.inner.groups.iter().enumerate() {
            let mut metrics = group.raft.metrics();
            match tokio::time::timeout_at(deadline, metrics.wait_for(|m| m.current_leader.is_some())).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(Error::Unavailable(format!("shard {shard} stopped"))),
                Err(_) => return Err(Error::Timeout(format!("shard {shard} has no leader after {timeout:?}"))),
            }
        }
        Ok(())
    }

    /// Current metrics of `shard`. Panics if `shard >= shard_count()`.
    pub fn metrics(&self, shard: u32) -> Metrics {
        self.group(shard).raft.metrics().borrow().clone()
    }

    /// Stops the proposers (queued proposals are answered `Unavailable`), then every
    /// group, then flushes the store. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.proposer_tasks.lock());
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "proposer task ended abnormally");
            }
        }
        for (shard, group) in self.inner.groups.iter().enumerate() {
            if let Err(error) = group.raft.shutdown().await {
                tracing::warn!(shard, %error, "raft group ended abnormally");
            }
        }
        let store = self.inner.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "flushing the store failed"),
            Err(error) => tracing::warn!(%error, "flushing the store panicked"),
        }
        tracing::info!(shards = self.inner.groups.len(), "shard groups stopped");
    }

    fn group(&self, shard: u32) -> &Group {
        &self.inner.groups[shard as usize]
    }
}

async fn start_group(
    store: &Store,
    config: &ShardsConfig,
    shard: u32,
    observer: &Arc<dyn ApplyObserver>,
    cancel: &CancellationToken,
) -> Result<(Group, JoinHandle<()>), Error> {
    let machine = Arc::new(RwLock::new(ShardMachine::load(store.clone(), shard, config.shards)?));
    let log_store = LogStore::new(store.clone(), shard);
    let state_machine = StateMachine::open(store.clone(), machine.clone(), observer.clone(), &config.snapshot_dir)?;
    let raft = Raft::new(config.node_id, config.raft_config(shard)?, PeerNetwork, log_store, state_machine)
        .await
        .map_err(|e| Error::Raft(format!("shard {shard}: {e}")))?;
    let initialized = raft.is_initialized().await.map_err(|e| Error::Raft(format!("shard {shard}: {e}")))?;
    if initialized {
        tracing::debug!(shard, "shard resumed");
    } else {
        let me = PeerNode { peer_addr: config.peer_addr.clone(), region: config.region.clone() };
        match raft.initialize(BTreeMap::from([(config.node_id, me)])).await {
            Ok(()) => tracing::info!(shard, node_id = config.node_id, "shard initialized as a one-member group"),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!(shard, reason = %e, "shard already initialized");
            }
            Err(e) => {
                let _ = raft.shutdown().await;
                return Err(Error::Raft(format!("shard {shard}: initialize: {e}")));
            }
        }
    }
    let (proposer, task) = Proposer::spawn(shard, raft.clone(), cancel.child_token());
    Ok((Group { raft, machine, proposer }, task))
}
