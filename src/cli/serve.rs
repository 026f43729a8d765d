//! `pixstream serve`: runs one node until Ctrl-C or SIGTERM; SIGHUP reloads the
//! certificates, keys, CAs and access files (a bad new file keeps the old one).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, StartMode};
use crate::server;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Cluster configuration; without it the embedded single-node default runs.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This node's id in the configuration.
    #[arg(long, requires = "config")]
    pub node_id: Option<u64>,
    /// Join a running cluster: bootstrap no shard and host every shard, so that the
    /// shards' leaders can add this node (then run `pixstream cluster members`).
    #[arg(long, requires = "config")]
    pub join: bool,
    /// Data directory of the embedded default.
    #[arg(long, default_value = "./data", conflicts_with = "config")]
    pub data_dir: PathBuf,
    /// Public (PSP) listener of the embedded default.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "config")]
    pub public_addr: SocketAddr,
    /// Internal (producer) listener of the embedded default.
    #[arg(long, default_value = "127.0.0.1:8081", conflicts_with = "config")]
    pub internal_addr: SocketAddr,
}

/// Runs the node described by `args`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mode = if args.join { StartMode::Join } else { StartMode::Bootstrap };
    let config = match &args.config {
        Some(path) => Config::load(path, args.node_id.unwrap_or(1), mode)?,
        None => Config::embedded(&args.data_dir, args.public_addr, args.internal_addr),
    };
    let shutdown = CancellationToken::new();
    let node = server::start(config, shutdown.clone()).await?;
    let security = &node.app.config.security;
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    println!("pixstream node {} ready", node.app.config.node_id);
    println!(
        "  public API   (PSP pulls):       {}://{}/api/v1/out/{{ispb}}/stream/start",
        scheme(security.public_tls.is_some()),
        node.public_addr
    );
    println!(
        "  internal API (producer posts):  {}://{}/internal/v1/out/{{ispb}}/msgs",
        scheme(security.internal_tls.is_some()),
        node.internal_addr
    );
    println!("  data: {}", node.app.config.data_dir.display());
    run_until_stopped(&node).await;
    println!("shutting down");
    shutdown.cancel();
    node.stopped().await;
    Ok(())
}

/// Serves until Ctrl-C or SIGTERM, reloading on every SIGHUP.
#[cfg(unix)]
async fn run_until_stopped(node: &server::RunningNode) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hangup.recv() => {
                // Each failure is logged by `reload`; the node serves on either way.
                let _ = node.reload();
            }
        }
    }
}

#[cfg(not(unix))]
async fn run_until_stopped(_node: &server::RunningNode) {
    let _ = tokio::signal::ctrl_c().await;
}
