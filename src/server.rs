//! Starting and stopping one node: storage, the shard groups, both listeners and the
//! background tasks, under one `CancellationToken`. Shutdown runs in order: stop
//! accepting and answer waiting long polls, stop Raft, flush and close RocksDB.
//! Tests start nodes in-process with port 0 addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use storage::{Store, StoreOptions};
use token::KeyRing;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::app::{App, AppState};
use crate::config::Config;
use crate::error::Error;
use crate::produce::AppendService;
use crate::pull::{Notifier, PullService, sweeper};
use crate::shard_client::ShardClient;

/// A running node.
pub struct RunningNode {
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub app: AppState,
    tasks: Vec<JoinHandle<()>>,
}

/// The three listening sockets of a node, bound before it starts (tests bind port 0
/// for every node first, so each node's configuration can name the others).
pub struct Listeners {
    pub public: TcpListener,
    pub internal: TcpListener,
    pub peer: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Listeners, Error> {
        let bind = |what: &'static str, addr| async move {
            TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })
        };
        Ok(Listeners {
            public: bind("public", config.public_addr).await?,
            internal: bind("internal", config.internal_addr).await?,
            peer: bind("peer", config.peer_addr).await?,
        })
    }
}

/// Binds the configured addresses, then starts the node (see `start_on`).
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<RunningNode, Error> {
    let listeners = Listeners::bind(&config).await?;
    start_on(config, listeners, shutdown, Arc::new(raft::NetworkFaults::default())).await
}

/// Opens storage, starts the shard groups and serves the three listeners until
/// `shutdown` is cancelled (then call `RunningNode::stopped`). `faults` injects
/// network faults between nodes (tests only; production passes an empty one).
pub async fn start_on(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    faults: Arc<raft::NetworkFaults>,
) -> Result<RunningNode, Error> {
    let startup = |what: &'static str, e: &dyn std::fmt::Display| Error::Start { what, reason: e.to_string() };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| startup("create data dir", &e))?;
    let store = open_store(&config).await.map_err(|e| startup("open storage", &e))?;
    let keys = if config.active_key.is_empty() {
        KeyRing::load_or_generate_dev(&config.key_dir)?
    } else {
        KeyRing::load_dir(&config.key_dir, &config.active_key)?
    };
    for notice in keys.notices() {
        tracing::warn!(file = %notice.path().display(), "{notice}");
    }
    let public_addr = listeners.public.local_addr().map_err(|e| startup("public listener", &e))?;
    let internal_addr = listeners.internal.local_addr().map_err(|e| startup("internal listener", &e))?;
    let peer_addr = listeners.peer.local_addr().map_err(|e| startup("peer listener", &e))?;
    let notifier = Arc::new(Notifier::default());
    let shards_config = raft::ShardsConfig {
        node_id: config.node_id,
        shards: config.shards,
        peer_addr: peer_addr.to_string(),
        region: config.region.clone(),
        cluster: config.cluster_map(),
        faults,
        snapshot_dir: config.snapshot_dir(),
        heartbeat_ms: config.heartbeat_ms,
        election_timeout_ms: config.election_timeout_ms,
        join: config.join,
        ..raft::ShardsConfig::default()
    };
    let shards = raft::Shards::start(store.clone(), shards_config, notifier.clone())
        .await
        .map_err(|e| startup("start shards", &e))?;
    // Relays bodies byte for byte: never negotiates or decodes compression itself.
    let peer_client = reqwest::Client::builder()
        .no_gzip()
        .connect_timeout(Duration::from_secs(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| startup("peer http client", &e))?;
    let config = Arc::new(config);
    let shard_client = ShardClient::new(shards.clone());
    let pull = Arc::new(PullService::new(
        config.clone(),
        shard_client.clone(),
        store.clone(),
        keys,
        notifier,
        shutdown.clone(),
    ));
    let app: AppState = Arc::new(App {
        append: AppendService::new(config.clone(), shard_client),
        config,
        shards,
        store,
        pull,
        peer_client,
        shutdown: shutdown.clone(),
    });
    let public = api::public_router(app.clone());
    let internal = api::internal_router(app.clone());
    let peer = api::peer::peer_router(app.clone(), public.clone(), internal.clone());
    let tasks = vec![
        serve(listeners.peer, peer, shutdown.clone(), "peer"),
        serve(listeners.public, public, shutdown.clone(), "public"),
        serve(listeners.internal, internal, shutdown.clone(), "internal"),
        tokio::spawn(sweeper::run(app.pull.clone())),
    ];
    // The peer listener is up: the other nodes can now reach this one to elect.
    if let Err(error) = app.shards.wait_for_leaders(Duration::from_secs(30)).await {
        tracing::warn!(%error, "not every shard has a leader yet; serving anyway (requests answer 503 until it does)");
    }
    tracing::info!(node = app.config.node_id, %public_addr, %internal_addr, %peer_addr, shards = app.config.shards, "node ready");
    Ok(RunningNode { public_addr, internal_addr, peer_addr, app, tasks })
}

impl RunningNode {
    /// Waits for the listeners and tasks to finish after shutdown was signalled,
    /// then stops Raft and flushes storage.
    pub async fn stopped(self) {
        let RunningNode { app, tasks, .. } = self;
        for task in tasks {
            let _ = task.await;
        }
        app.shards.shutdown().await;
        if let Err(error) = app.store.flush() {
            tracing::error!(%error, "flushing storage on shutdown failed");
        }
        tracing::info!(node = app.config.node_id, "node stopped");
    }
}

/// Opens RocksDB. A database this process closed a moment ago may still be held by
/// background tasks finishing their shutdown: its lock is retried for 5 seconds.
async fn open_store(config: &Config) -> Result<Store, storage::Error> {
    let options =
        StoreOptions { fsync: config.fsync, background_write_bytes_per_sec: config.background_write_bytes_per_sec };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(&config.db_dir(), options.clone()) {
            Err(error) if error.to_string().contains("lock") && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    name: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let service = router.into_make_service();
        if let Err(error) = axum::serve(listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::error!(listener = name, %error, "listener failed");
        }
    })
}
