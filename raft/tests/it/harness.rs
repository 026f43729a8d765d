//! `Cluster`: several `Shards` nodes in one process, each with its own RocksDB in a
//! temp dir and a real peer listener on 127.0.0.1, sharing one `NetworkFaults`.
//! Listeners are bound before the `ClusterMap` is built, so every address is known;
//! a stopped node's address is bound again when it restarts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use raft::{ClusterMap, MemberNode, NetworkFaults, NoopObserver, Shards, ShardsConfig};
use storage::{Command, CommandResult, Ispb, Store, StoredMessage, TenantState, shard_of};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::open_store;
use crate::peer_server::PeerServer;

/// Test timings: slower than production's ratio would need, so that a loaded
/// machine does not cause spurious elections.
pub fn cluster_config(dir: &std::path::Path, shards: u32) -> ShardsConfig {
    ShardsConfig {
        shards,
        snapshot_dir: dir.join("snapshots"),
        heartbeat_ms: 200,
        election_timeout_ms: (1000, 2000),
        ..ShardsConfig::default()
    }
}

/// One running node.
pub struct Node {
    pub shards: Shards,
    pub store: Store,
    server: PeerServer,
}

/// A cluster of nodes `1..=n`, regions `r1..=rn`.
pub struct Cluster {
    pub map: ClusterMap,
    pub faults: Arc<NetworkFaults>,
    dirs: BTreeMap<u64, TempDir>,
    nodes: BTreeMap<u64, Node>,
    configure: fn(ShardsConfig) -> ShardsConfig,
}

impl Cluster {
    /// Starts `n` nodes with `shards` shards replicated `rf` times, each config passed
    /// through `configure`, and waits until every node knows every leader.
    pub async fn start(n: u64, shards: u32, rf: u32, configure: fn(ShardsConfig) -> ShardsConfig) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut members = Vec::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a peer port");
            let addr = listener.local_addr().expect("bound address");
            members.push(MemberNode { id, region: format!("r{id}"), peer_addr: addr.to_string() });
            listeners.insert(id, listener);
        }
        let map = ClusterMap { nodes: members, shards, replication_factor: rf };
        let mut cluster = Cluster {
            map,
            faults: Arc::new(NetworkFaults::new()),
            dirs: (1..=n).map(|id| (id, TempDir::new().expect("temp dir"))).collect(),
            nodes: BTreeMap::new(),
            configure,
        };
        for (id, listener) in listeners {
            cluster.launch(id, listener).await;
        }
        for node in cluster.nodes.values() {
            node.shards.wait_for_leaders(Duration::from_secs(30)).await.expect("every hosted shard has a leader");
        }
        cluster
    }

    fn config(&self, id: u64) -> ShardsConfig {
        let dir = self.dirs[&id].path();
        let base = ShardsConfig {
            node_id: id,
            cluster: self.map.clone(),
            faults: self.faults.clone(),
            ..cluster_config(dir, self.map.shards)
        };
        (self.configure)(base)
    }

    async fn launch(&mut self, id: u64, listener: TcpListener) {
        let slot = Arc::new(OnceLock::new());
        let server = PeerServer::spawn(listener, slot.clone());
        let store = open_store(self.dirs[&id].path()).await;
        let shards = Shards::start(store.clone(), self.config(id), Arc::new(NoopObserver)).await.expect("node starts");
        if slot.set(shards.clone()).is_err() {
            panic!("the slot of node {id} was set twice");
        }
        self.nodes.insert(id, Node { shards, store, server });
    }

    /// Bytes of the snapshot files node `id` holds for `shard`.
    pub fn snapshot_bytes(&self, id: u64, shard: u32) -> u64 {
        let dir = self.dirs[&id].path().join("snapshots").join(format!("shard-{shard}"));
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "snap"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// The running node `id`.
    pub fn node(&self, id: u64) -> &Shards {
        &self.nodes.get(&id).unwrap_or_else(|| panic!("node {id} is not running")).shards
    }

    /// The store of the running node `id`.
    pub fn store(&self, id: u64) -> &Store {
        &self.nodes.get(&id).unwrap_or_else(|| panic!("node {id} is not running")).store
    }

    /// Ids of the running nodes.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Stops node `id` like a crash of its process: the listener goes, the groups stop.
    pub async fn stop(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap_or_else(|| panic!("node {id} is not running"));
        node.server.stop().await;
        node.shards.shutdown().await;
    }

    /// Starts node `id` again on its old directory and address.
    pub async fn restart(&mut self, id: u64) {
        let addr: SocketAddr =
            self.map.node(id).expect("node in map").peer_addr.parse().expect("peer address is an address");
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(error) if tries < 100 => {
                    tries += 1;
                    tracing::debug!(%error, "peer port not free yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot bind {addr} again: {error}"),
            }
        };
        self.launch(id, listener).await;
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }

    /// Waits until a running node in `among` leads `shard` and every other running
    /// node in `among` that replicates it agrees; returns the leader.
    pub async fn wait_leader(&self, shard: u32, among: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let leader =
                among.iter().copied().find(|id| self.nodes.contains_key(id) && self.node(*id).is_leader(shard));
            if let Some(leader) = leader {
                let agreed = among
                    .iter()
                    .filter(|id| self.nodes.contains_key(id) && self.node(**id).hosts(shard))
                    .all(|id| self.node(*id).leader_of(shard) == Some(leader));
                if agreed {
                    return leader;
                }
            }
            if Instant::now() > deadline {
                let seen: Vec<_> = among
                    .iter()
                    .filter(|id| self.nodes.contains_key(id))
                    .map(|id| (*id, self.node(*id).leader_of(shard)))
                    .collect();
                panic!("no agreed leader of shard {shard} among {among:?} after {timeout:?}: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Proposes `command` on whichever running node leads its shard, retrying while
    /// leadership moves. Only for idempotent commands (appends with dedupe keys).
    pub async fn propose(&self, command: Command, timeout: Duration) -> CommandResult {
        let shard = shard_of(command.ispb(), self.map.shards);
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.running().into_iter().find(|id| self.node(*id).is_leader(shard));
            if let Some(leader) = leader {
                let attempt = tokio::time::timeout(Duration::from_secs(5), self.node(leader).propose(command.clone()));
                match attempt.await {
                    Ok(Ok(result)) => return result,
                    Ok(Err(error)) => tracing::info!(shard, leader, %error, "proposal failed; retrying"),
                    Err(_) => tracing::info!(shard, leader, "proposal timed out; retrying"),
                }
            }
            assert!(Instant::now() < deadline, "shard {shard} took no proposal within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What node `id` holds for `ispb`: tenant state and every stored message.
    pub fn state_on(&self, id: u64, ispb: &Ispb) -> (Option<TenantState>, Vec<StoredMessage>) {
        let tenant = self.node(id).read(ispb, |m| m.tenant(ispb).cloned()).expect("node replicates the shard");
        let seqs: Vec<u64> = tenant.as_ref().map(|t| (1..t.next_seq).collect()).unwrap_or_default();
        let messages = self.store(id).read_messages(ispb, &seqs).expect("messages readable");
        (tenant, messages)
    }

    /// Waits until every running replica of each ISPB's shard holds the same state
    /// for it, and returns that state of each ISPB.
    pub async fn wait_converged(
        &self,
        ispbs: &[Ispb],
        timeout: Duration,
    ) -> Vec<(Option<TenantState>, Vec<StoredMessage>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut states = Vec::new();
            let mut converged = true;
            for ispb in ispbs {
                let shard = shard_of(ispb, self.map.shards);
                let replicas: Vec<u64> =
                    self.map.replicas(shard).into_iter().filter(|id| self.nodes.contains_key(id)).collect();
                let first = self.state_on(replicas[0], ispb);
                converged &= replicas[1..].iter().all(|id| self.state_on(*id, ispb) == first);
                states.push(first);
            }
            if converged {
                return states;
            }
            if Instant::now() > deadline {
                for ispb in ispbs {
                    let shard = shard_of(ispb, self.map.shards);
                    for id in self.map.replicas(shard).into_iter().filter(|id| self.nodes.contains_key(id)) {
                        let (tenant, messages) = self.state_on(id, ispb);
                        let metrics = self.node(id).metrics(shard);
                        eprintln!(
                            "node {id} {ispb}: next_seq {:?}, {} messages, metrics {metrics:?}",
                            tenant.map(|t| t.next_seq),
                            messages.len()
                        );
                    }
                }
                panic!("replicas did not converge within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `n`-th ISPB (counting from 0) that falls into `shard` of `shards`.
pub fn ispb_in(shard: u32, shards: u32, n: usize) -> Ispb {
    (0u32..)
        .map(|i| Ispb::parse(&format!("{i:08}")).expect("digits are a valid ISPB"))
        .filter(|ispb| shard_of(ispb, shards) == shard)
        .nth(n)
        .expect("some ISPB falls into every shard")
}
