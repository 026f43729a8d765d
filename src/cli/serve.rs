//! `pixstream serve`: runs one node until Ctrl-C or SIGTERM.

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
    println!("pixstream node {} ready", node.app.config.node_id);
    println!("  public API   (PSP pulls):       http://{}/api/v1/out/{{ispb}}/stream/start", node.public_addr);
    println!("  internal API (producer posts):  http://{}/internal/v1/out/{{ispb}}/msgs", node.internal_addr);
    println!("  data: {}", node.app.config.data_dir.display());
    wait_for_signal().await;
    println!("shutting down");
    shutdown.cancel();
    node.stopped().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
