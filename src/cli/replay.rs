//! `pixstream admin replay open --ispb X (--from-seq N | --from-time T)`: opens a
//! compliance replay stream of a tenant (`POST /internal/v1/tenants/{ispb}/replays`)
//! and prints its range and the path the PSP reads it from (its first
//! `PI-Pull-Next`; the PSP GETs it on the public API with its own credentials).

use anyhow::Context;
use clap::{Args, Subcommand};
use wire::paths::tenant_replays_path;

use super::admin_call::{AdminTarget, answer, with_json};
use crate::api::tenant_actions::{ReplayOpen, ReplayOpenedView};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(subcommand)]
    pub command: ReplayCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Open a replay from a seq or a time up to the end of the log now.
    Open(OpenArgs),
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[arg(long)]
    pub ispb: String,
    /// The first seq to replay.
    #[arg(long, conflicts_with = "from_time", required_unless_present = "from_time")]
    pub from_seq: Option<u64>,
    /// Replay from the first message enqueued at or after this UTC time
    /// (`2026-12-03T10:00:00Z`).
    #[arg(long)]
    pub from_time: Option<String>,
    #[command(flatten)]
    pub node: AdminTarget,
}

/// Runs `admin replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let ReplayCommand::Open(args) = args.command;
    let url = args.node.url(&tenant_replays_path(&args.ispb));
    let body = ReplayOpen { from_seq: args.from_seq, from_time: args.from_time };
    let text = answer(with_json(args.node.client()?.post(url), &body)?).await?;
    if args.node.json {
        println!("{}", text.trim());
        return Ok(());
    }
    let opened: ReplayOpenedView = serde_json::from_str(&text).context("replay answer")?;
    println!(
        "replay {} of {}: seqs {} to {}, open until {} ({} of {} replays open)",
        opened.replay,
        opened.ispb,
        opened.from_seq,
        opened.to_seq,
        opened.expires_at,
        opened.open_replays,
        opened.max_replays
    );
    println!("the PSP reads it from: {}", opened.pull_next);
    Ok(())
}
