//! Starting and stopping one node: storage, the shard groups, both listeners and the
//! background tasks, under one `CancellationToken`. Shutdown runs in order: stop
//! accepting and answer waiting long polls, stop Raft, flush and close RocksDB.
//! Tests start nodes in-process with port 0 addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use storage::{Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::activity::StreamActivity;
use crate::api;
use crate::app::{App, AppState};
use crate::config::Config;
use crate::error::ApiError;
use crate::notify::Notifier;
use crate::sweeper;
use crate::token::KeyRing;

/// A running node.
pub struct RunningNode {
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    pub app: AppState,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens storage, starts the shard groups and serves both listeners until
/// `shutdown` is cancelled (then call `RunningNode::stopped`).
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<RunningNode, ApiError> {
    let startup = |what: &str, e: &dyn std::fmt::Display| ApiError::Startup(format!("{what}: {e}"));
    std::fs::create_dir_all(&config.data_dir).map_err(|e| startup("create data dir", &e))?;
    let store = Store::open(&config.db_dir(), StoreOptions { fsync: config.fsync }).map_err(|e| startup("open storage", &e))?;
    let keys = if config.active_key.is_empty() {
        KeyRing::load_or_generate_dev(&config.key_dir)?
    } else {
        KeyRing::load_dir(&config.key_dir, &config.active_key)?
    };
    let notifier = Arc::new(Notifier::default());
    let shards_config = raft::ShardsConfig {
        node_id: config.node_id,
        shards: config.shards,
        peer_addr: config.peer_addr.to_string(),
        region: config.region.clone(),
        snapshot_dir: config.snapshot_dir(),
        heartbeat_ms: config.heartbeat_ms,
        ..raft::ShardsConfig::default()
    };
    let shards = raft::Shards::start(store.clone(), shards_config, notifier.clone())
        .await
        .map_err(|e| startup("start shards", &e))?;
    shards.wait_for_leaders(Duration::from_secs(30)).await.map_err(|e| startup("elect shard leaders", &e))?;

    let public = TcpListener::bind(config.public_addr).await.map_err(|e| startup("bind public listener", &e))?;
    let internal = TcpListener::bind(config.internal_addr).await.map_err(|e| startup("bind internal listener", &e))?;
    let public_addr = public.local_addr().map_err(|e| startup("public listener", &e))?;
    let internal_addr = internal.local_addr().map_err(|e| startup("internal listener", &e))?;

    let app: AppState = Arc::new(App {
        config,
        shards,
        store,
        keys,
        notifier,
        activity: Arc::new(StreamActivity::default()),
        shutdown: shutdown.clone(),
    });
    let tasks = vec![
        serve(public, api::public_router(app.clone()), shutdown.clone(), "public"),
        serve(internal, api::internal_router(app.clone()), shutdown.clone(), "internal"),
        tokio::spawn(sweeper::run(app.clone())),
    ];
    tracing::info!(node = app.config.node_id, %public_addr, %internal_addr, shards = app.config.shards, "node ready");
    Ok(RunningNode { public_addr, internal_addr, app, tasks })
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

fn serve(listener: TcpListener, router: axum::Router, shutdown: CancellationToken, name: &'static str) -> JoinHandle<()> {
    tokio::spawn(async move {
        let service = router.into_make_service();
        if let Err(error) = axum::serve(listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::error!(listener = name, %error, "listener failed");
        }
    })
}
