//! Starting and stopping one node: storage, the shard groups, the three listeners
//! (with their TLS and access rules) and the background tasks, under one
//! `CancellationToken`. Shutdown runs in order: stop accepting and answer waiting
//! long polls, stop Raft, flush and close RocksDB. `reload` re-reads certificates
//! and access files (SIGHUP). Tests start nodes in-process with port 0 addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use storage::{Store, StoreOptions};
use token::KeyRing;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::api;
use crate::app::{App, AppState};
use crate::audit::sealer::Sealer;
use crate::audit::{AccessEvents, AuditSigner};
use crate::config::Config;
use crate::error::Error;
use crate::listener::{Listener, ReloadableTls, tls};
use crate::load::Load;
use crate::metrics::Metrics;
use crate::produce::AppendService;
use crate::pull::{Notifier, PullService, sweeper};
use crate::retention;
use crate::shard_client::ShardClient;
use crate::throttle::{Rate, RateLimits};

/// A running node.
pub struct RunningNode {
    pub public_addr: SocketAddr,
    pub internal_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub app: AppState,
    /// The TLS configurations `reload` refreshes.
    tls: ListenerTls,
    tasks: Vec<JoinHandle<()>>,
}

/// The TLS of each listener, when configured.
#[derive(Clone, Default)]
struct ListenerTls {
    public: Option<Arc<ReloadableTls>>,
    internal: Option<Arc<ReloadableTls>>,
    peer: Option<Arc<ReloadableTls>>,
}

impl ListenerTls {
    fn load(config: &Config) -> Result<ListenerTls, Error> {
        let security = &config.security;
        let server = |t| ReloadableTls::server(t).map(Arc::new);
        Ok(ListenerTls {
            public: security.public_tls.as_ref().map(server).transpose()?,
            internal: security.internal_tls.as_ref().map(server).transpose()?,
            peer: security.peer_tls.as_ref().map(|t| ReloadableTls::peer(t).map(Arc::new)).transpose()?,
        })
    }
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
    // The store's path leads the reason: RocksDB names only the file it choked on.
    let store = open_store(&config)
        .await
        .map_err(|e| Error::Start { what: "open storage", reason: format!("{}: {e}", config.db_dir().display()) })?;
    let keys = if config.active_key.is_empty() {
        KeyRing::load_or_generate_dev(&config.key_dir)?
    } else {
        KeyRing::load_dir(&config.key_dir, &config.active_key)?
    };
    for notice in keys.notices() {
        tracing::warn!(file = %notice.path().display(), "{notice}");
    }
    let signer = Arc::new(AuditSigner::load_or_generate(&config.audit.key_dir, config.node_id)?);
    let listener_tls = ListenerTls::load(&config)?;
    let access = Access::load(&config.security)?;
    let peer_tls = config.security.peer_tls.as_ref().map(tls::peer_client_config).transpose()?.map(Arc::new);
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
        peer_tls: peer_tls.clone(),
        audit: config.audit.enabled,
        ..raft::ShardsConfig::default()
    };
    let shards = raft::Shards::start(store.clone(), shards_config, notifier.clone())
        .await
        .map_err(|e| startup("start shards", &e))?;
    // Relays bodies byte for byte: never negotiates or decodes compression itself.
    let peer_client = match &peer_tls {
        Some(config) => reqwest::Client::builder().use_preconfigured_tls((**config).clone()),
        None => reqwest::Client::builder(),
    };
    let peer_client = peer_client
        .no_gzip()
        .connect_timeout(Duration::from_secs(1))
        // Below the peers' idle keep-alive limit, so a pooled connection is not
        // closed by the peer just as a request is sent on it.
        .pool_idle_timeout(config.listener_limits.header_read_timeout / 2)
        .build()
        .map_err(|e| startup("peer http client", &e))?;
    let limits = &config.listener_limits;
    let load = Load::new(limits.max_in_flight, limits.max_in_flight_appends);
    let config = Arc::new(config);
    let shard_client = ShardClient::new(shards.clone());
    let pull = Arc::new(PullService::new(
        config.clone(),
        shard_client.clone(),
        store.clone(),
        keys,
        notifier,
        load.clone(),
        shutdown.clone(),
    ));
    let defaults = &config.tenant_defaults;
    let rate_limits = RateLimits::new(Rate { per_sec: defaults.rate_per_sec, burst: defaults.rate_burst });
    let sealer =
        Arc::new(Sealer { config: config.audit.clone(), signer, shards: shard_client.clone(), store: store.clone() });
    let metrics = Metrics::new(pull.churn().clone());
    let app: AppState = Arc::new(App {
        append: AppendService::new(config.clone(), shard_client),
        config,
        shards,
        store,
        pull,
        peer_client,
        peer_scheme: if peer_tls.is_some() { "https" } else { "http" },
        access,
        rate_limits,
        load,
        sealer,
        access_events: AccessEvents::default(),
        metrics,
        shutdown: shutdown.clone(),
    });
    let public = api::public_router(app.clone());
    let internal = api::internal_router(app.clone());
    let peer = api::peer::peer_router(app.clone(), public.clone(), internal.clone());
    let limits = app.config.listener_limits;
    let serve = |name, router, tls: &Option<Arc<ReloadableTls>>, socket, shutdown: &CancellationToken| {
        Listener { name, router, limits, tls: tls.clone() }.spawn(socket, shutdown.clone())
    };
    let tasks = vec![
        serve("peer", peer, &listener_tls.peer, listeners.peer, &shutdown),
        serve("public", public, &listener_tls.public, listeners.public, &shutdown),
        serve("internal", internal, &listener_tls.internal, listeners.internal, &shutdown),
        tokio::spawn(sweeper::run(app.pull.clone())),
        tokio::spawn(seal_periodically(app.sealer.clone(), shutdown.clone())),
        tokio::spawn(
            retention::Purger::new(app.pull.shards().clone(), app.store.clone(), app.config.dedupe_window)
                .run(shutdown.clone()),
        ),
    ];
    // The peer listener is up: the other nodes can now reach this one to elect. A
    // joining node waits for nothing: leaders call it once `cluster members` adds it.
    if !app.config.join
        && let Err(error) = app.shards.wait_for_leaders(Duration::from_secs(30)).await
    {
        tracing::warn!(%error, "not every shard has a leader yet; serving anyway (requests answer 503 until it does)");
    }
    tracing::info!(node = app.config.node_id, %public_addr, %internal_addr, %peer_addr, shards = app.config.shards, "node ready");
    Ok(RunningNode { public_addr, internal_addr, peer_addr, app, tls: listener_tls, tasks })
}

/// The sealer's loop (`audit::sealer`), on a shared sealer.
async fn seal_periodically(sealer: Arc<Sealer>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(sealer.config.checkpoint_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => { sealer.seal_led_chains().await; }
            () = shutdown.cancelled() => return,
        }
    }
}

impl RunningNode {
    /// Re-reads the certificates, keys and CAs of every TLS listener and the access
    /// files. Each part that fails keeps what it had; the first failure is returned
    /// (and every one is logged). Open connections are not touched.
    pub fn reload(&self) -> Result<(), Error> {
        let mut first_error = None;
        let mut note = |what: &'static str, result: Result<(), Error>| match result {
            Ok(()) => tracing::info!(what, "reloaded"),
            Err(error) => {
                tracing::error!(what, %error, "reload failed; keeping the configuration in use");
                first_error.get_or_insert(error);
            }
        };
        for (what, tls) in
            [("public TLS", &self.tls.public), ("internal TLS", &self.tls.internal), ("peer TLS", &self.tls.peer)]
        {
            if let Some(tls) = tls {
                note(what, tls.reload().map_err(Error::from));
            }
        }
        note("access rules", self.app.access.reload().map_err(Error::from));
        first_error.map_or(Ok(()), Err)
    }

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
