//! `pixstream admin backup --out DIR`: asks a node (`--url`, its internal API) to
//! write an online backup of itself into DIR, a new directory on that node's file
//! system (`POST /internal/v1/node/backup`). `pixstream restore --from DIR` (with
//! the node's `--config` and `--node-id`, or the embedded default's `--data-dir`)
//! rebuilds a stopped node's data dir from such a backup; then start the node as
//! usual.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wire::paths::NODE_BACKUP;

use super::admin_call::{AdminTarget, answer, with_json};
use crate::api::node_admin::{BackupRequest, BackupTaken};
use crate::config::{Config, StartMode};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// New directory on the node (absolute path) to write the backup into.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub node: AdminTarget,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (`admin backup --out`).
    #[arg(long)]
    pub from: PathBuf,
    /// Cluster configuration of the node to restore.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The node's id in the configuration.
    #[arg(long, requires = "config")]
    pub node_id: Option<u64>,
    /// Data directory of the embedded default (without --config).
    #[arg(long, default_value = "./data", conflicts_with = "config")]
    pub data_dir: PathBuf,
}

/// `admin backup`.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let request = with_json(args.node.client()?.post(args.node.url(NODE_BACKUP)), &BackupRequest { out: args.out })?;
    let text = answer(request).await?;
    if args.node.json {
        println!("{}", text.trim());
        return Ok(());
    }
    let taken: BackupTaken = serde_json::from_str(&text).context("backup answer")?;
    println!(
        "backup of node {} at {}: {} files, {} bytes in {}",
        taken.node_id,
        taken.created_at,
        taken.files,
        taken.bytes,
        taken.out.display()
    );
    for shard in &taken.shards {
        println!(
            "  shard {:<3} applied index {:<8} snapshot at {}",
            shard.shard, shard.applied_index, shard.snapshot_index
        );
    }
    Ok(())
}

/// `restore`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path, args.node_id.unwrap_or(1), StartMode::Bootstrap)?,
        None => Config::embedded(&args.data_dir, default_addr(8080), default_addr(8081)),
    };
    let restored = crate::backup::restore::restore(&args.from, &config)?;
    let manifest = &restored.manifest;
    println!(
        "restored node {} from the backup of {} ({} files, {} bytes, {} key files) into {}; start the node as usual",
        manifest.node_id,
        manifest.created_at,
        manifest.files.len(),
        manifest.total_bytes(),
        restored.keys_restored,
        config.data_dir.display()
    );
    Ok(())
}

fn default_addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
