//! `TestNode`: one node running in this process on a temp dir with port-0
//! listeners, its config built as a `ConfigFile` and validated like a real one.

use std::net::SocketAddr;
use std::time::Instant;

use pixstream::config::{Config, ConfigFile, StartMode};
use pixstream::server::{self, RunningNode};
use tokio_util::sync::CancellationToken;

use pixstream::config::ClientAuth;

use super::client::{Api, client};
use super::messages::{ISPB, OTHER_ISPB};
use super::secure::Pki;
use super::timing;

/// How the test reaches a node's public listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP, as the embedded default.
    Plain,
    /// HTTPS with `client_auth = required`: the test's client presents a PSP
    /// certificate the mapping lets read `ISPB` and `OTHER_ISPB`.
    MutualTls,
}

/// One node running in this process on a temp dir.
pub struct TestNode {
    pub api: Api,
    /// The validated configuration the node runs with.
    pub config: Config,
    node: Option<RunningNode>,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
    /// The certificates of a `Transport::MutualTls` node.
    pki: Option<Pki>,
}

impl std::ops::Deref for TestNode {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestNode {
    /// Starts a node from the embedded default file with the test preset
    /// (`timing::NODE`, no fsync), then `tweak` applied to the file's sections
    /// (`|f| f.limits.long_poll_wait_ms = 50`), validated as node 1 bootstrapping.
    pub async fn start(tweak: impl FnOnce(&mut ConfigFile)) -> TestNode {
        TestNode::start_over(Transport::Plain, tweak).await
    }

    /// As `start`, the public listener reached over `transport`.
    pub async fn start_over(transport: Transport, tweak: impl FnOnce(&mut ConfigFile)) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut file = ConfigFile::embedded(dir.path(), any, any);
        file.storage.fsync = false;
        file.limits.long_poll_wait_ms = timing::NODE.long_poll_wait_ms;
        file.limits.stream_idle_timeout_ms = timing::NODE.stream_idle_timeout_ms;
        let pki = (transport == Transport::MutualTls).then(|| secure_public_listener(&mut file));
        tweak(&mut file);
        let config =
            file.validate(1, StartMode::Bootstrap).unwrap_or_else(|e| panic!("the test node's config is refused: {e}"));
        let (node, shutdown) = launch(config.clone()).await;
        let mut api = api_of(&node);
        if let Some(pki) = &pki {
            api.client = pki.https_client(Some(&pki.client("psp")));
        }
        TestNode { api, config, node: Some(node), shutdown, dir, pki }
    }

    /// The running node's shared state.
    pub fn app(&self) -> &pixstream::app::App {
        &self.node.as_ref().expect("node is running").app
    }

    /// The address the peer listener bound.
    pub fn peer_addr(&self) -> SocketAddr {
        self.node.as_ref().expect("node is running").peer_addr
    }

    /// Re-reads certificates and access files, as SIGHUP does.
    pub fn reload(&self) -> Result<(), pixstream::Error> {
        self.node.as_ref().expect("node is running").reload()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the node (graceful: long polls answered, RocksDB flushed and closed).
    pub async fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            self.shutdown.cancel();
            tokio::time::timeout(timing::STOP, node.stopped())
                .await
                .unwrap_or_else(|_| panic!("node stops within {:?}", timing::STOP));
        }
    }

    /// Stops the node and starts it again on the same data dir with the same config
    /// (new ports: `PI-Pull-Next` paths are relative, so tokens keep working). The
    /// server retries the RocksDB lock the previous run may still hold.
    pub async fn restart(&mut self) {
        self.stop_node().await;
        let (node, shutdown) = launch(self.config.clone()).await;
        self.api = Api { client: self.api.client.clone(), ..api_of(&node) };
        self.node = Some(node);
        self.shutdown = shutdown;
    }

    /// Stops the node at the end of a test.
    pub async fn stop(mut self) {
        self.stop_node().await;
    }

    /// A tenant's replicated state, as the state machine holds it.
    pub fn tenant(&self, ispb: &str) -> Option<storage::TenantState> {
        let ispb = storage::Ispb::parse(ispb).expect("valid ISPB");
        self.app().shards.read(&ispb, |machine| machine.tenant(&ispb).cloned()).flatten()
    }

    /// `next_seq` of a tenant, 1 when it does not exist: "how many were stored + 1".
    pub fn next_seq(&self, ispb: &str) -> u64 {
        self.tenant(ispb).map_or(1, |t| t.next_seq)
    }

    /// The confirmed low watermark of a tenant (1 when it does not exist).
    pub fn watermark(&self, ispb: &str) -> u64 {
        self.tenant(ispb).map_or(1, |t| t.watermark)
    }

    /// Requests parked in a long poll (or waiting for a forward) now.
    pub fn waiting_requests(&self) -> usize {
        self.app().load.waiting_now()
    }

    /// Open streams of a tenant.
    pub fn open_streams(&self, ispb: &str) -> usize {
        self.tenant(ispb).map_or(0, |t| t.streams.len())
    }

    /// Messages stored for `ispb` at `seqs`.
    pub fn stored(&self, ispb: &str, seqs: &[u64]) -> Vec<storage::StoredMessage> {
        let ispb = storage::Ispb::parse(ispb).expect("valid ISPB");
        self.app().store.read_messages(&ispb, seqs).expect("read stored messages")
    }

    /// Waits (bounded) until `condition` holds; returns how long it took.
    pub async fn wait_until(
        &self,
        within: std::time::Duration,
        what: &str,
        mut condition: impl FnMut(&TestNode) -> bool,
    ) -> std::time::Duration {
        let started = Instant::now();
        loop {
            if condition(self) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "timed out after {within:?} waiting for: {what}");
            tokio::time::sleep(timing::NODE_POLL).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A CA, a server certificate and a PSP certificate (CN `psp`, reading `ISPB` and
/// `OTHER_ISPB`) for a `Transport::MutualTls` node; `file` gets `[tls.public]`.
fn secure_public_listener(file: &mut ConfigFile) -> Pki {
    let pki = Pki::new("test CA");
    pki.server("node");
    let clients = pki.path("clients.toml");
    std::fs::write(
        &clients,
        format!("[[client]]\nname = \"psp\"\nsubject_cn = \"psp\"\nispbs = [\"{ISPB}\", \"{OTHER_ISPB}\"]\n"),
    )
    .expect("write clients.toml");
    file.tls.public = Some(pki.server_tls(ClientAuth::Required, Some(clients)));
    pki
}

/// A fresh client for the listeners `node` bound.
fn api_of(node: &RunningNode) -> Api {
    let security = &node.app.config.security;
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    Api {
        client: client(),
        public: format!("{}://{}", scheme(security.public_tls.is_some()), node.public_addr),
        internal: format!("{}://{}", scheme(security.internal_tls.is_some()), node.internal_addr),
    }
}

async fn launch(config: Config) -> (RunningNode, CancellationToken) {
    let shutdown = CancellationToken::new();
    let node = tokio::time::timeout(timing::START, server::start(config, shutdown.clone()))
        .await
        .unwrap_or_else(|_| panic!("node starts within {:?}", timing::START))
        .unwrap_or_else(|e| panic!("node failed to start: {e}"));
    (node, shutdown)
}
