//! `Shards`: the shard groups this node replicates, and `ShardsConfig`, how to run
//! them.
//!
//! Each shard is one openraft group over the shared RocksDB store: a `LogStore`, a
//! `StateMachine` around the shard's `ShardMachine`, a group-commit proposer, and a
//! `PeerNetwork` to the other replicas. The `ClusterMap` decides only the initial
//! membership: on the very first start of a node (its store holds no Raft state at
//! all) the shard's first replica initializes the group with every replica as a
//! voter, and the others wait to be contacted. After that the Raft membership of each
//! group is the truth (see `membership`). A node runs a group for every shard its
//! placement assigns it and every shard with persisted Raft state; a joining node
//! (`ShardsConfig::join`) runs an uninitialized group for every shard, so that any
//! leader can add it, and bootstraps nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, Fatal, InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use storage::{Command, CommandResult, Ispb, ShardMachine, Store, TenantState, shard_of};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::faults::NetworkFaults;
use crate::log_store::LogStore;
use crate::network::{PeerNetwork, PeerTransport};
use crate::observer::ApplyObserver;
use crate::placement::{ClusterMap, MemberNode};
use crate::proposer::Proposer;
use crate::record_fetch::PeerRecords;
use crate::state_machine::StateMachine;
use crate::types::{Metrics, PeerNode, Raft};

/// Largest snapshot piece in one RPC (below common 2 MiB request body limits).
const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;
/// How long one snapshot piece may take, the last one's install included.
const SNAPSHOT_RPC_TIMEOUT_MS: u64 = 10_000;

/// How to run the shard groups of this node.
#[derive(Clone, Debug)]
pub struct ShardsConfig {
    /// This node's id in every group.
    pub node_id: u64,
    /// Number of shards (fixed for the life of the data: it places every ISPB).
    pub shards: u32,
    /// Where peers reach this node (used only when `cluster` is empty).
    pub peer_addr: String,
    /// This node's region label (used only when `cluster` is empty).
    pub region: String,
    /// Every node and the replication factor. Empty (the default): this node alone
    /// replicates every shard, at `peer_addr` in `region`.
    pub cluster: ClusterMap,
    /// The fault injector every peer send consults (tests; empty in production).
    pub faults: Arc<NetworkFaults>,
    /// Root of the snapshot files (`shard-<N>/` below it).
    pub snapshot_dir: PathBuf,
    /// Leader heartbeat interval, also the timeout of one append RPC. Slow on purpose:
    /// many groups share a node.
    pub heartbeat_ms: u64,
    /// Election timeout range (min, max); openraft draws each timeout at random in
    /// it, so the replicas of a shard do not stand for election together.
    pub election_timeout_ms: (u64, u64),
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind a snapshot (for lagging followers).
    pub logs_to_keep: u64,
    /// This node joins a running cluster: it hosts a group for every shard and never
    /// initializes one; the shards' leaders add it (`Shards::reconcile_members`).
    pub join: bool,
    /// Mutual TLS to the peers (the node's peer certificate, the cluster CA);
    /// `None`: plain HTTP/2.
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// The state machines write the audit chain (`[audit] enabled`; the same on
    /// every node of a cluster).
    pub audit: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            node_id: 1,
            shards: 16,
            peer_addr: "127.0.0.1:7400".into(),
            region: "local".into(),
            cluster: ClusterMap::default(),
            faults: Arc::new(NetworkFaults::default()),
            snapshot_dir: PathBuf::from("data/snapshots"),
            heartbeat_ms: 500,
            election_timeout_ms: (1500, 3000),
            snapshot_logs_since_last: 20_000,
            logs_to_keep: 1_000,
            join: false,
            peer_tls: None,
            audit: true,
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
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            install_snapshot_timeout: SNAPSHOT_RPC_TIMEOUT_MS,
            ..Default::default()
        };
        Ok(Arc::new(config.validate().map_err(|e| Error::Config(e.to_string()))?))
    }

    /// The cluster map in effect: `cluster`, checked against this config, or the
    /// one-node map of this node when `cluster` is empty.
    pub fn effective_cluster(&self) -> Result<ClusterMap, Error> {
        if self.shards == 0 {
            return Err(Error::Config("shards must be at least 1".into()));
        }
        if self.cluster.nodes.is_empty() {
            let me = MemberNode { id: self.node_id, region: self.region.clone(), peer_addr: self.peer_addr.clone() };
            return Ok(ClusterMap::single(me, self.shards));
        }
        self.cluster.validate()?;
        if self.cluster.shards != self.shards {
            return Err(Error::Config(format!(
                "the cluster map has {} shards, the node config {}",
                self.cluster.shards, self.shards
            )));
        }
        if self.cluster.node(self.node_id).is_none() {
            return Err(Error::Config(format!("node {} is not in the cluster map", self.node_id)));
        }
        Ok(self.cluster.clone())
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
    cluster: ClusterMap,
    /// Replicas of every shard by the config's placement (the initial membership).
    replicas: Vec<Vec<u64>>,
    /// By shard: whether this node waits for a leader of the shard even while it is
    /// not (yet) in the group's membership (the placement assigns it the shard).
    placed: Vec<bool>,
    /// The peer transport (Raft RPCs, membership requests).
    transport: PeerTransport,
    /// The group of every shard this node replicates, by shard.
    groups: Vec<Option<Group>>,
    cancel: CancellationToken,
    group_tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One shard's group on this node.
struct Group {
    raft: Raft,
    machine: Arc<RwLock<ShardMachine>>,
    proposer: Proposer,
    snapshots: crate::SnapshotDir,
}

/// What `start_group` needs besides the shard.
struct GroupEnv<'a> {
    store: &'a Store,
    config: &'a ShardsConfig,
    cluster: &'a ClusterMap,
    transport: &'a PeerTransport,
    observer: &'a Arc<dyn ApplyObserver>,
    cancel: &'a CancellationToken,
}

impl Shards {
    /// Loads every shard this node replicates from `store` and starts its group. On a
    /// node's first start (no shard has Raft state) a group is initialized by the
    /// shard's first replica with all its replicas as voters; the other replicas wait
    /// to be contacted. A joining node starts every group and initializes none.
    pub async fn start(store: Store, config: ShardsConfig, observer: Arc<dyn ApplyObserver>) -> Result<Shards, Error> {
        let cluster = config.effective_cluster()?;
        let transport = PeerTransport::new(config.peer_tls.clone())?;
        let cancel = CancellationToken::new();
        let replicas: Vec<Vec<u64>> = (0..config.shards).map(|shard| cluster.replicas(shard)).collect();
        let mut persisted = Vec::with_capacity(config.shards as usize);
        for shard in 0..config.shards {
            persisted.push(LogStore::new(store.clone(), shard).has_state()?);
        }
        let first_start = !persisted.iter().any(|p| *p);
        let placed: Vec<bool> = replicas.iter().map(|r| !config.join && r.contains(&config.node_id)).collect();
        let mut groups = Vec::with_capacity(config.shards as usize);
        let mut group_tasks = Vec::new();
        let env = GroupEnv {
            store: &store,
            config: &config,
            cluster: &cluster,
            transport: &transport,
            observer: &observer,
            cancel: &cancel,
        };
        for (shard, shard_replicas) in (0..config.shards).zip(&replicas) {
            let placed_here = shard_replicas.contains(&config.node_id);
            if !(config.join || placed_here || persisted[shard as usize]) {
                groups.push(None);
                continue;
            }
            // Only a node's very first start bootstraps: a restart with an edited
            // config must never initialize a second group beside the running one.
            let bootstrap = first_start && !config.join && shard_replicas.first() == Some(&config.node_id);
            match start_group(&env, shard, bootstrap).await {
                Ok((group, tasks)) => {
                    groups.push(Some(group));
                    group_tasks.extend(tasks);
                }
                Err(error) => {
                    tracing::error!(shard, %error, "shard failed to start; stopping the others");
                    cancel.cancel();
                    for group in groups.iter().flatten() {
                        let _ = group.raft.shutdown().await;
                    }
                    return Err(error);
                }
            }
        }
        let hosted = groups.iter().filter(|g| g.is_some()).count();
        tracing::info!(
            node_id = config.node_id,
            shards = config.shards,
            hosted,
            join = config.join,
            nodes = cluster.nodes.len(),
            "shard groups started"
        );
        Ok(Shards {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                store,
                cluster,
                replicas,
                placed,
                transport,
                groups,
                cancel,
                group_tasks: Mutex::new(group_tasks),
            }),
        })
    }

    /// Number of shards (hosted here or not).
    pub fn shard_count(&self) -> u32 {
        self.inner.groups.len() as u32
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The cluster map in effect.
    pub fn cluster(&self) -> &ClusterMap {
        &self.inner.cluster
    }

    /// The shard of `ispb`.
    pub fn shard_for(&self, ispb: &Ispb) -> u32 {
        shard_of(ispb, self.shard_count())
    }

    /// Whether this node replicates `shard`.
    pub fn hosts(&self, shard: u32) -> bool {
        self.group(shard).is_some()
    }

    /// The shards this node replicates, ascending.
    pub fn hosted_shards(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.shard_count()).filter(|shard| self.hosts(*shard))
    }

    /// The machines of the shards this node leads now.
    pub fn led_machines(&self) -> impl Iterator<Item = Arc<RwLock<ShardMachine>>> + '_ {
        self.hosted_shards().filter(|shard| self.is_leader(*shard)).filter_map(|shard| self.machine(shard))
    }

    /// `each` of every tenant of the shards this node leads, one machine read at a time.
    pub fn led_tenants<T>(&self, mut each: impl FnMut(&TenantState) -> T) -> Vec<T> {
        let mut out = Vec::new();
        for machine in self.led_machines() {
            out.extend(machine.read().tenants().map(&mut each));
        }
        out
    }

    /// As `led_tenants`, deleted tenants' records included (their audit chains).
    pub fn led_records<T>(&self, mut each: impl FnMut(&TenantState) -> T) -> Vec<T> {
        let mut out = Vec::new();
        for machine in self.led_machines() {
            out.extend(machine.read().records().map(&mut each));
        }
        out
    }

    /// The nodes replicating `shard`, its first (bootstrap) replica first; empty for
    /// an unknown shard.
    pub fn replicas(&self, shard: u32) -> Vec<u64> {
        self.inner.replicas.get(shard as usize).cloned().unwrap_or_default()
    }

    /// Replicates `command` in its ISPB's shard and returns what applying it produced,
    /// once it is committed. `NotMember` when this node does not replicate the shard,
    /// `NotLeader` when it does but another replica leads it.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        let shard = self.shard_for(command.ispb());
        let Some(group) = self.group(shard) else {
            return Err(Error::NotMember { shard });
        };
        group.proposer.propose(command).await
    }

    /// Waits until this node's machine of `ispb`'s shard has applied everything the
    /// shard committed before the call (openraft's linearizable read barrier: it
    /// confirms leadership with a quorum). A new leader's machine may still be
    /// applying what its predecessor committed; a read that must see the newest
    /// state of a stream passes this barrier first. `NotLeader` when another replica
    /// leads the shard, `NotMember` when this node does not replicate it.
    pub async fn catch_up(&self, ispb: &Ispb) -> Result<(), Error> {
        let shard = self.shard_for(ispb);
        let Some(group) = self.group(shard) else {
            return Err(Error::NotMember { shard });
        };
        match group.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(Error::NotLeader { leader: forward.leader_id })
            }
            Err(other) => Err(Error::Unavailable(format!("shard {shard}: {other}"))),
        }
    }

    /// Runs `f` on the machine of `ispb`'s shard under its read lock; `None` when this
    /// node does not replicate the shard. Keep `f` short: applies wait for it. On a
    /// follower the state may lag the leader's.
    pub fn read<T>(&self, ispb: &Ispb, f: impl FnOnce(&ShardMachine) -> T) -> Option<T> {
        let group = self.group(self.shard_for(ispb))?;
        let guard = group.machine.read();
        Some(f(&guard))
    }

    /// The machine of `shard`, if this node replicates it.
    pub fn machine(&self, shard: u32) -> Option<Arc<RwLock<ShardMachine>>> {
        self.group(shard).map(|g| g.machine.clone())
    }

    /// The Raft group of `shard` (admin: snapshots, metrics, leadership), if this node
    /// replicates it.
    pub fn raft(&self, shard: u32) -> Option<Raft> {
        self.group(shard).map(|g| g.raft.clone())
    }

    /// Current metrics of `shard`, if this node replicates it.
    pub fn metrics(&self, shard: u32) -> Option<Metrics> {
        self.group(shard).map(|g| g.raft.metrics().borrow().clone())
    }

    /// (commands proposed, Raft entries they went into) on `shard` through this node,
    /// if it replicates the shard.
    pub fn proposal_stats(&self, shard: u32) -> Option<(u64, u64)> {
        self.group(shard).map(|g| g.proposer.stats().read())
    }

    /// Whether this node leads `shard` now (false when it does not replicate it).
    pub fn is_leader(&self, shard: u32) -> bool {
        self.group(shard).is_some_and(|group| {
            let metrics = group.raft.metrics();
            let metrics = metrics.borrow();
            metrics.state == ServerState::Leader && metrics.current_leader == Some(self.inner.node_id)
        })
    }

    /// The leader of `shard` as this node last learned it; `None` when unknown or when
    /// this node does not replicate the shard.
    pub fn leader_of(&self, shard: u32) -> Option<u64> {
        self.group(shard).and_then(|group| group.raft.metrics().borrow().current_leader)
    }

    /// Whether this node should know a leader of `shard` from `metrics`: it is in
    /// the group's membership, or the placement assigns it the shard.
    fn expects_leader(&self, shard: u32, metrics: &Metrics) -> bool {
        self.inner.placed.get(shard as usize).copied().unwrap_or(false)
            || metrics.membership_config.membership().get_node(&self.inner.node_id).is_some()
    }

    /// The shards this node is (or is placed to be) a member of that have no known
    /// leader: what readiness waits for. A joining node's groups that no leader has
    /// added it to yet are not counted.
    pub fn shards_without_leader(&self) -> Vec<u32> {
        self.hosted_shards()
            .filter(|shard| {
                self.metrics(*shard).is_some_and(|m| m.current_leader.is_none() && self.expects_leader(*shard, &m))
            })
            .collect()
    }

    /// The shards whose Raft group stopped on its own: a write to the log or the
    /// state machine failed (a full or failing disk), which openraft treats as
    /// fatal. Such a group serves nothing until the node restarts and reloads it
    /// from disk; a group stopped by shutdown is not counted.
    pub fn stopped_shards(&self) -> Vec<u32> {
        self.hosted_shards()
            .filter(|shard| {
                self.metrics(*shard)
                    .is_some_and(|m| matches!(m.running_state, Err(ref e) if !matches!(e, Fatal::Stopped)))
            })
            .collect()
    }

    /// Waits until every shard this node is a member of (or is placed in) has a
    /// known leader.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        for (shard, group) in self.inner.groups.iter().enumerate() {
            let Some(group) = group else {
                continue;
            };
            let mut metrics = group.raft.metrics();
            let settled = |m: &Metrics| m.current_leader.is_some() || !self.expects_leader(shard as u32, m);
            match tokio::time::timeout_at(deadline, metrics.wait_for(settled)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(Error::Unavailable(format!("shard {shard} stopped"))),
                Err(_) => return Err(Error::Timeout(format!("shard {shard} has no leader after {timeout:?}"))),
            }
        }
        Ok(())
    }

    /// Stops the proposers (queued proposals are answered `Unavailable`) and the
    /// snapshot triggers, then every group, then flushes the store. Calling it twice
    /// is harmless.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.group_tasks.lock());
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "shard task ended abnormally");
            }
        }
        for (shard, group) in self.inner.groups.iter().enumerate() {
            let Some(group) = group else {
                continue;
            };
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
        tracing::info!(node_id = self.inner.node_id, "shard groups stopped");
    }

    /// The peer transport.
    pub(crate) fn peer_transport(&self) -> &PeerTransport {
        &self.inner.transport
    }

    /// The store every shard of this node writes to.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The group-commit queue of `shard`, if this node replicates it.
    pub(crate) fn proposer(&self, shard: u32) -> Option<&Proposer> {
        self.group(shard).map(|g| &g.proposer)
    }

    /// The snapshot files of `shard`, if this node replicates it.
    pub(crate) fn snapshot_dir(&self, shard: u32) -> Option<&crate::SnapshotDir> {
        self.group(shard).map(|g| &g.snapshots)
    }

    fn group(&self, shard: u32) -> Option<&Group> {
        self.inner.groups.get(shard as usize).and_then(Option::as_ref)
    }
}

async fn start_group(env: &GroupEnv<'_>, shard: u32, bootstrap: bool) -> Result<(Group, Vec<JoinHandle<()>>), Error> {
    let config = env.config;
    let machine =
        Arc::new(RwLock::new(ShardMachine::load(env.store.clone(), shard, config.shards)?.with_audit(config.audit)));
    let log_store = LogStore::new(env.store.clone(), shard);
    let appended_bytes = log_store.appended_bytes();
    let records = Arc::new(PeerRecords::new(config.node_id, env.transport.clone()));
    let state_machine =
        StateMachine::open(env.store.clone(), machine.clone(), env.observer.clone(), &config.snapshot_dir, records)?;
    let snapshots = state_machine.snapshots().clone();
    let network = PeerNetwork::new(shard, config.node_id, env.transport.clone(), config.faults.clone());
    let raft = Raft::new(config.node_id, config.raft_config(shard)?, network, log_store, state_machine)
        .await
        .map_err(|e| Error::Raft(format!("shard {shard}: {e}")))?;
    let initialized = raft.is_initialized().await.map_err(|e| Error::Raft(format!("shard {shard}: {e}")))?;
    if initialized && config.join {
        // A node rejoining with Raft state (restored from a backup, after leaving the
        // shard) still sees itself as a voter: it must not stand for election —
        // raising terms the group would then have to catch up with — before a
        // leader has added it back and contacted it.
        hold_elections_until_a_leader_calls(&raft, config.election_timeout_ms.1);
        tracing::debug!(shard, "shard resumed; elections held until a leader calls");
    } else if initialized {
        tracing::debug!(shard, "shard resumed");
    } else if bootstrap {
        let members: BTreeMap<u64, PeerNode> = env.cluster.members(shard);
        let voters: Vec<u64> = members.keys().copied().collect();
        match raft.initialize(members).await {
            Ok(()) => tracing::info!(shard, node_id = config.node_id, ?voters, "shard group initialized"),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!(shard, reason = %e, "shard already initialized");
            }
            Err(e) => {
                let _ = raft.shutdown().await;
                return Err(Error::Raft(format!("shard {shard}: initialize: {e}")));
            }
        }
    } else {
        tracing::debug!(shard, "new replica waits for the shard's first replica to contact it");
    }
    let (proposer, task) = Proposer::spawn(shard, raft.clone(), env.cancel.child_token());
    let trigger = crate::snapshot_trigger::spawn(
        shard,
        raft.clone(),
        appended_bytes,
        snapshots.clone(),
        env.cancel.child_token(),
    );
    Ok((Group { raft, machine, proposer, snapshots }, vec![task, trigger]))
}

/// Disables elections of `raft` until it hears from another node's leadership, or
/// for at most twenty election timeouts (so that a cluster restarted entirely in
/// join mode still elects).
fn hold_elections_until_a_leader_calls(raft: &Raft, election_timeout_max_ms: u64) {
    raft.runtime_config().elect(false);
    let raft = raft.clone();
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        let called = metrics.wait_for(|m| m.current_leader.is_some_and(|leader| leader != m.id));
        let _ = tokio::time::timeout(Duration::from_millis(20 * election_timeout_max_ms), called).await;
        raft.runtime_config().elect(true);
    });
}
