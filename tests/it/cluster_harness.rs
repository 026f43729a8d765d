//! The in-process cluster harness: N nodes in this process, each with its own temp
//! dir and port-0 listeners bound before any node starts (so every node's config
//! names the others' real addresses), one shared signing key, and one shared
//! `NetworkFaults` to cut or slow the links between them. Nodes can be stopped and
//! restarted on the same dir and ports, and new members added to the running cluster
//! (`add_member`, for membership changes).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixstream::config::{ClusterNode, Config};
use pixstream::server::{self, Listeners, RunningNode};
use raft::NetworkFaults;
use storage::Ispb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::harness::{Api, client};

/// One member of a test cluster.
pub struct Member {
    pub config: Config,
    pub api: Api,
    node: Option<RunningNode>,
    shutdown: CancellationToken,
}

impl Member {
    /// The running node's state; panics when the member is stopped.
    pub fn app(&self) -> &pixstream::app::App {
        &self.node.as_ref().expect("member is running").app
    }

    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }
}

/// A cluster of nodes in this process.
pub struct TestCluster {
    pub members: Vec<Member>,
    pub faults: Arc<NetworkFaults>,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `regions.len()` nodes (node i+1 in region `regions[i]`) with `shards`
    /// shards and replication factor 3 (capped), and waits for every shard to have a
    /// leader.
    pub async fn start(regions: &[&str], shards: u32) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut bound = Vec::new();
        for _ in regions {
            let public = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let internal = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            bound.push(Listeners { public, internal, peer });
        }
        let addr = |l: &TcpListener| l.local_addr().expect("local addr");
        let nodes: Vec<ClusterNode> = bound
            .iter()
            .zip(regions)
            .enumerate()
            .map(|(i, (l, region))| ClusterNode {
                id: i as u64 + 1,
                region: (*region).to_owned(),
                public_addr: addr(&l.public),
                internal_addr: addr(&l.internal),
                peer_addr: addr(&l.peer),
            })
            .collect();
        // One signing key for every node, made before any starts.
        let key_dir = dir.path().join("keys");
        pixstream::token::KeyRing::load_or_generate_dev(&key_dir).expect("dev key");
        let faults = Arc::new(NetworkFaults::default());
        let mut launches = Vec::new();
        for (node, listeners) in nodes.iter().zip(bound) {
            let config = member_config(dir.path(), &nodes, node, shards);
            launches.push(launch(config, listeners, faults.clone()));
        }
        let members = futures::future::join_all(launches).await;
        let cluster = TestCluster { members, faults, dir };
        cluster.wait_for_leaders(Duration::from_secs(30)).await;
        cluster
    }

    /// The member with node id `id`.
    pub fn member(&self, id: u64) -> &Member {
        &self.members[(id - 1) as usize]
    }

    /// An API client of node `id`.
    pub fn api(&self, id: u64) -> Api {
        self.member(id).api.clone()
    }

    /// Ids of running members.
    pub fn running(&self) -> Vec<u64> {
        self.members.iter().filter(|m| m.is_running()).map(|m| m.config.node_id).collect()
    }

    /// The shard of an ISPB.
    pub fn shard_of(&self, ispb: &str) -> u32 {
        let ispb = Ispb::parse(ispb).expect("valid ISPB");
        storage::shard_of(&ispb, self.members[0].config.shards)
    }

    /// The leader of `shard` as a running member that leads it sees it.
    pub fn leader_of(&self, shard: u32) -> Option<u64> {
        self.members
            .iter()
            .filter(|m| m.is_running())
            .find(|m| m.app().shards.is_leader(shard))
            .map(|m| m.config.node_id)
    }

    /// Waits until every shard has a leader among the running members.
    pub async fn wait_for_leaders(&self, timeout: Duration) {
        let shards = self.members[0].config.shards;
        let deadline = Instant::now() + timeout;
        loop {
            let missing: Vec<u32> = (0..shards).filter(|s| self.leader_of(*s).is_none()).collect();
            if missing.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "shards {missing:?} have no leader after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `shard` has a leader other than `not`.
    pub async fn wait_for_new_leader(&self, shard: u32, not: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader_of(shard).filter(|l| *l != not) {
                return leader;
            }
            assert!(Instant::now() < deadline, "shard {shard} elected no new leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops node `id` (its listeners close; its data stays).
    pub async fn stop(&mut self, id: u64) {
        let member = &mut self.members[(id - 1) as usize];
        if let Some(node) = member.node.take() {
            member.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(30), node.stopped()).await.expect("node stops within 30 s");
        }
    }

    /// Every member as the cluster config lists it (stopped ones included).
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.members.iter().map(|m| own_node(&m.config)).collect()
    }

    /// Binds new listeners and starts node `id` (the next id) in `region`, its config
    /// listing every member and itself; `join` starts it as a joining node
    /// (`serve --join`). It replicates nothing until a membership change adds it.
    pub async fn add_member(&mut self, id: u64, region: &str, join: bool) {
        assert_eq!(id, self.members.len() as u64 + 1, "members are numbered in order");
        let bind = || TcpListener::bind("127.0.0.1:0");
        let listeners = Listeners {
            public: bind().await.expect("bind"),
            internal: bind().await.expect("bind"),
            peer: bind().await.expect("bind"),
        };
        let addr = |l: &TcpListener| l.local_addr().expect("local addr");
        let node = ClusterNode {
            id,
            region: region.to_owned(),
            public_addr: addr(&listeners.public),
            internal_addr: addr(&listeners.internal),
            peer_addr: addr(&listeners.peer),
        };
        let mut nodes = self.nodes();
        nodes.push(node.clone());
        let mut config = member_config(self.dir.path(), &nodes, &node, self.members[0].config.shards);
        config.join = join;
        let member = launch(config, listeners, self.faults.clone()).await;
        self.members.push(member);
    }

    /// Starts node `id` again on its data dir and its old addresses.
    pub async fn restart(&mut self, id: u64) {
        self.stop(id).await;
        let config = self.member(id).config.clone();
        let mut listeners = None;
        for _ in 0..100 {
            match bind_same(&config).await {
                Ok(l) => {
                    listeners = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listeners = listeners.expect("the node's old ports can be bound again");
        // The previous RocksDB handle may still be closing: retry the start briefly.
        let restarted = launch(config, listeners, self.faults.clone()).await;
        self.members[(id - 1) as usize] = restarted;
    }

    /// Every running replica's view of a tenant (for convergence checks); a node
    /// outside the shard's Raft membership (a joining node not added to it) is none.
    pub fn tenant_views(&self, ispb: &str) -> Vec<(u64, Option<storage::TenantState>)> {
        let ispb = Ispb::parse(ispb).expect("valid ISPB");
        self.members
            .iter()
            .filter(|m| m.is_running())
            .filter(|m| m.app().shards.is_member(m.app().shards.shard_for(&ispb)))
            .filter_map(|m| {
                let view = m.app().shards.read(&ispb, |machine| machine.tenant(&ispb).cloned())?;
                Some((m.config.node_id, view))
            })
            .collect()
    }

    /// Waits until every running replica holds the same state for `ispb`.
    pub async fn wait_converged(&self, ispb: &str, timeout: Duration) -> storage::TenantState {
        let deadline = Instant::now() + timeout;
        loop {
            let views = self.tenant_views(ispb);
            if let Some((_, Some(first))) = views.first()
                && views.iter().all(|(_, v)| v.as_ref() == Some(first))
            {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "replicas of {ispb} did not converge: {views:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for member in &self.members {
            member.shutdown.cancel();
        }
    }
}

/// The node `config` describes, as its cluster lists it.
fn own_node(config: &Config) -> ClusterNode {
    ClusterNode {
        id: config.node_id,
        region: config.region.clone(),
        public_addr: config.public_addr,
        internal_addr: config.internal_addr,
        peer_addr: config.peer_addr,
    }
}

fn member_config(dir: &std::path::Path, nodes: &[ClusterNode], node: &ClusterNode, shards: u32) -> Config {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = Config::embedded(&dir.join(format!("node-{}", node.id)), any, any);
    config.node_id = node.id;
    config.region = node.region.clone();
    config.nodes = nodes.to_vec();
    config.public_addr = node.public_addr;
    config.internal_addr = node.internal_addr;
    config.peer_addr = node.peer_addr;
    config.shards = shards;
    config.replication_factor = 3.min(nodes.len() as u32);
    config.heartbeat_ms = 100;
    config.fsync = false;
    config.long_poll_wait = Duration::from_millis(500);
    config.stream_idle_timeout = Duration::from_secs(10);
    config.key_dir = dir.join("keys");
    config
}

async fn bind_same(config: &Config) -> std::io::Result<Listeners> {
    Ok(Listeners {
        public: TcpListener::bind(config.public_addr).await?,
        internal: TcpListener::bind(config.internal_addr).await?,
        peer: TcpListener::bind(config.peer_addr).await?,
    })
}

async fn launch(config: Config, listeners: Listeners, faults: Arc<NetworkFaults>) -> Member {
    let shutdown = CancellationToken::new();
    let api = Api {
        client: client(),
        public: format!("http://{}", config.public_addr),
        internal: format!("http://{}", config.internal_addr),
    };
    let node = tokio::time::timeout(
        Duration::from_secs(60),
        server::start_on(config.clone(), listeners, shutdown.clone(), faults),
    )
    .await
    .expect("node starts within 60 s")
    .unwrap_or_else(|e| panic!("node {} failed to start: {e}", config.node_id));
    Member { config, api, node: Some(node), shutdown }
}

/// Posts until 201/200 (retrying 503s and broken connections: the dedupe key makes
/// a retried post idempotent) and returns the outcomes.
pub async fn retry_until_created(api: &Api, ispb: &str, bodies: &[String]) -> Vec<crate::harness::Appended> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parts: Vec<crate::harness::OutPart> =
            bodies.iter().map(|b| crate::harness::OutPart::xml(b.as_bytes())).collect();
        let (content_type, body) = crate::harness::multipart_body(&parts);
        let sent = api
            .client
            .post(format!("{}/internal/v1/out/{ispb}/msgs", api.internal))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            if status.is_success() {
                return crate::harness::appended(response).await.1;
            }
            assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "only 503 is retried");
        }
        assert!(Instant::now() < deadline, "no write was acknowledged for 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
