//! `TestCluster` and its `Member`s: N nodes in this process, each on its own data
//! dir under one temp dir, their port-0 listeners bound before any starts (so every
//! member's `ConfigFile` lists the others' real addresses), one shared key dir, and
//! one shared `NetworkFaults` to cut or slow the links between them. Members can be
//! stopped and restarted on the same dir and ports, and new members added to the
//! running cluster (`add_member`, for membership changes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixstream::api::cluster_admin::{MEMBERS_PATH, MembersAnswer, MembersRequest};
use pixstream::config::{
    AuditSection, ClusterNode, ClusterSection, Config, ConfigFile, HttpSection, InternalAuthSection, LimitsSection,
    ListenersSection, NodeSection, StartMode, StorageSection, TenantsSection, TlsSection, TokensSection,
};
use pixstream::server::{self, Listeners, RunningNode};
use raft::NetworkFaults;
use storage::Ispb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::client::{Api, client};
use super::timing;

/// The key dir every member's file names, relative to the shared data dir: one
/// signing key for the whole cluster.
const KEY_DIR: &str = "keys";

/// Replicas per shard: 3, capped at the member count.
const REPLICATION_FACTOR: u32 = 3;

/// One member of a test cluster.
pub struct Member {
    /// The validated configuration the member runs with.
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

/// A test's change to the cluster file, applied to every member's file (also of
/// members added or restarted later) before it is validated.
type FileTweak = Box<dyn Fn(&mut ConfigFile) + Send + Sync>;

/// A cluster of nodes in this process.
pub struct TestCluster {
    pub members: Vec<Member>,
    pub faults: Arc<NetworkFaults>,
    tweak: FileTweak,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `regions.len()` nodes (node i+1 in region `regions[i]`) with `shards`
    /// shards, replication factor 3 (capped) and `timing::MEMBER`, and waits for
    /// every shard to have a leader.
    pub async fn start(regions: &[&str], shards: u32) -> TestCluster {
        TestCluster::start_with(regions, shards, |_| {}).await
    }

    /// As `start`, with `tweak` applied to every member's file before validation
    /// (`|f| f.cluster.election_timeout_ms = [300, 600]`).
    pub async fn start_with(
        regions: &[&str],
        shards: u32,
        tweak: impl Fn(&mut ConfigFile) + Send + Sync + 'static,
    ) -> TestCluster {
        let tweak: FileTweak = Box::new(tweak);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut bound = Vec::new();
        for _ in regions {
            bound.push(bind_any().await);
        }
        let nodes: Vec<ClusterNode> = bound
            .iter()
            .zip(regions)
            .enumerate()
            .map(|(i, (listeners, region))| node_of(i as u64 + 1, region, listeners))
            .collect();
        let configs: Vec<Config> = nodes
            .iter()
            .map(|n| member_config(dir.path(), &nodes, n.id, shards, StartMode::Bootstrap, &tweak))
            .collect();
        // One signing key for every node, made before any starts.
        token::KeyRing::load_or_generate_dev(&configs[0].key_dir).expect("dev key");
        let faults = Arc::new(NetworkFaults::default());
        let launches =
            configs.into_iter().zip(bound).map(|(config, listeners)| launch(config, listeners, faults.clone()));
        let members = futures::future::join_all(launches).await;
        let cluster = TestCluster { members, faults, tweak, dir };
        cluster.wait_for_leaders(timing::LEADERS).await;
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
            tokio::time::sleep(timing::CLUSTER_POLL).await;
        }
    }

    /// Waits until `shard` has a leader other than `not`.
    pub async fn wait_for_new_leader(&self, shard: u32, not: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            // `not` may still believe it leads (a cut-off leader keeps its role until
            // it hears of a newer term): look at the others only.
            let leader = self
                .members
                .iter()
                .filter(|m| m.is_running() && m.config.node_id != not)
                .find(|m| m.app().shards.is_leader(shard))
                .map(|m| m.config.node_id);
            if let Some(leader) = leader {
                return leader;
            }
            assert!(Instant::now() < deadline, "shard {shard} elected no new leader within {timeout:?}");
            tokio::time::sleep(timing::CLUSTER_POLL).await;
        }
    }

    /// A running node that does not lead `shard` (its leader must be known).
    pub fn follower_of(&self, shard: u32) -> u64 {
        let leader = self.leader_of(shard).expect("the shard has a leader");
        self.running().into_iter().find(|id| *id != leader).expect("a running follower")
    }

    /// Stops node `id` (its listeners close; its data stays).
    pub async fn stop(&mut self, id: u64) {
        let member = &mut self.members[(id - 1) as usize];
        if let Some(node) = member.node.take() {
            member.shutdown.cancel();
            tokio::time::timeout(timing::STOP, node.stopped())
                .await
                .unwrap_or_else(|_| panic!("node {id} stops within {:?}", timing::STOP));
        }
    }

    /// Every member as the cluster config lists it (stopped ones included).
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.members.iter().map(|m| own_node(&m.config)).collect()
    }

    /// Binds new listeners and starts node `id` (the next id) in `region`, its config
    /// listing every member and itself; `join` starts it as a joining node
    /// (`serve --join`, `StartMode::Join`). It replicates nothing until a membership
    /// change adds it.
    pub async fn add_member(&mut self, id: u64, region: &str, join: bool) {
        assert_eq!(id, self.members.len() as u64 + 1, "members are numbered in order");
        let listeners = bind_any().await;
        let mut nodes = self.nodes();
        nodes.push(node_of(id, region, &listeners));
        let mode = if join { StartMode::Join } else { StartMode::Bootstrap };
        let config = member_config(self.dir.path(), &nodes, id, self.members[0].config.shards, mode, &self.tweak);
        let member = launch(config, listeners, self.faults.clone()).await;
        self.members.push(member);
    }

    /// Starts node `id` again on its data dir and its old addresses, in the mode it
    /// ran in before.
    pub async fn restart(&mut self, id: u64) {
        let mode = if self.member(id).config.join { StartMode::Join } else { StartMode::Bootstrap };
        self.restart_as(id, mode).await;
    }

    /// Starts node `id` again on its data dir and its old addresses, its config
    /// validated anew for `mode` (a joined node restarted without `--join`:
    /// `StartMode::Bootstrap`). The server retries the RocksDB lock the previous run
    /// may still hold.
    pub async fn restart_as(&mut self, id: u64, mode: StartMode) {
        self.stop(id).await;
        let old = &self.member(id).config;
        let config = member_config(self.dir.path(), &old.nodes, id, old.shards, mode, &self.tweak);
        let listeners = bind_again(&config).await;
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
            tokio::time::sleep(timing::CLUSTER_POLL).await;
        }
    }

    /// Posts the node list to node `via`'s membership admin API and expects 200.
    pub async fn post_members(&self, via: u64, nodes: &[ClusterNode]) -> MembersAnswer {
        let request = MembersRequest {
            nodes: nodes
                .iter()
                .map(|n| raft::MemberNode { id: n.id, region: n.region.clone(), peer_addr: n.peer_addr.to_string() })
                .collect(),
            replication_factor: None,
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
        let url = format!("{}{MEMBERS_PATH}", self.api(via).internal);
        let body = serde_json::to_vec(&request).expect("encodes");
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the admin API answers");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, reqwest::StatusCode::OK, "membership change failed: {text}");
        serde_json::from_str(&text).expect("the answer is JSON")
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

/// Node `id` in `region` on the addresses `listeners` are bound to.
fn node_of(id: u64, region: &str, listeners: &Listeners) -> ClusterNode {
    let addr = |l: &TcpListener| l.local_addr().expect("local addr");
    ClusterNode {
        id,
        region: region.to_owned(),
        public_addr: addr(&listeners.public),
        internal_addr: addr(&listeners.internal),
        peer_addr: addr(&listeners.peer),
    }
}

/// The cluster file every member of `nodes` shares: `timing::MEMBER`, no fsync,
/// data under `dir` (each node in its `node-{id}`), keys in `dir/keys`.
fn member_file(dir: &Path, nodes: &[ClusterNode], shards: u32) -> ConfigFile {
    let t = &timing::MEMBER;
    ConfigFile {
        cluster: ClusterSection {
            shards,
            replication_factor: Some(REPLICATION_FACTOR.min(nodes.len() as u32)),
            heartbeat_ms: t.heartbeat_ms,
            election_timeout_ms: t.election_timeout_ms,
        },
        nodes: nodes
            .iter()
            .map(|n| NodeSection {
                id: n.id,
                region: n.region.clone(),
                public_addr: n.public_addr.to_string(),
                internal_addr: n.internal_addr.to_string(),
                peer_addr: n.peer_addr.to_string(),
            })
            .collect(),
        storage: StorageSection { data_dir: dir.to_path_buf(), fsync: false, ..StorageSection::default() },
        limits: LimitsSection {
            long_poll_wait_ms: t.long_poll_wait_ms,
            stream_idle_timeout_ms: t.stream_idle_timeout_ms,
            ..LimitsSection::default()
        },
        tenants: TenantsSection::default(),
        tokens: TokensSection { key_dir: PathBuf::from(KEY_DIR), ..TokensSection::default() },
        http: HttpSection::default(),
        listeners: ListenersSection::default(),
        tls: TlsSection::default(),
        internal_auth: InternalAuthSection::default(),
        audit: AuditSection::default(),
    }
}

/// Node `id`'s validated config in the cluster of `nodes`, the test's `tweak`
/// applied to the file first.
fn member_config(
    dir: &Path,
    nodes: &[ClusterNode],
    id: u64,
    shards: u32,
    mode: StartMode,
    tweak: &FileTweak,
) -> Config {
    let mut file = member_file(dir, nodes, shards);
    tweak(&mut file);
    file.validate(id, mode).unwrap_or_else(|e| panic!("node {id}'s cluster config is refused: {e}"))
}

/// Three listeners on port 0 of 127.0.0.1.
async fn bind_any() -> Listeners {
    let bind = || TcpListener::bind("127.0.0.1:0");
    Listeners {
        public: bind().await.expect("bind"),
        internal: bind().await.expect("bind"),
        peer: bind().await.expect("bind"),
    }
}

/// Binds a stopped node's old addresses again, retrying while they are still taken.
async fn bind_again(config: &Config) -> Listeners {
    let deadline = Instant::now() + timing::REBIND;
    loop {
        match Listeners::bind(config).await {
            Ok(listeners) => return listeners,
            Err(e) => {
                assert!(Instant::now() < deadline, "node {}'s old ports are still taken: {e}", config.node_id);
                tokio::time::sleep(timing::RETRY_PAUSE).await;
            }
        }
    }
}

async fn launch(config: Config, listeners: Listeners, faults: Arc<NetworkFaults>) -> Member {
    let shutdown = CancellationToken::new();
    let api = Api {
        client: client(),
        public: format!("http://{}", config.public_addr),
        internal: format!("http://{}", config.internal_addr),
    };
    let id = config.node_id;
    let node =
        tokio::time::timeout(timing::START, server::start_on(config.clone(), listeners, shutdown.clone(), faults))
            .await
            .unwrap_or_else(|_| panic!("node {id} starts within {:?}", timing::START))
            .unwrap_or_else(|e| panic!("node {id} failed to start: {e}"));
    Member { config, api, node: Some(node), shutdown }
}
