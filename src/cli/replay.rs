//! `pixstream admin replay open --ispb X (--from-seq N | --from-time T)`: opens a
//! compliance replay stream of a tenant (`POST /internal/v1/tenants/{ispb}/replays`)
//! and prints its range and the path the PSP reads it from (its first
//! `PI-Pull-Next`; the PSP GETs it on the public API with its own credentials).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use wire::paths::tenant_replays_path;

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
    /// Internal API base URL of any node.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    /// Print the node's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
}

/// Runs `admin replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let ReplayCommand::Open(args) = args.command;
    let client = args.auth.client(reqwest::Client::builder())?;
    let url = format!("{}{}", args.url.trim_end_matches('/'), tenant_replays_path(&args.ispb));
    let body = serde_json::to_vec(&ReplayOpen { from_seq: args.from_seq, from_time: args.from_time })
        .context("encode the request")?;
    let response = client.post(&url).header("content-type", "application/json").body(body).send().await;
    let response = response.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.context("answer body")?;
    if !status.is_success() {
        bail!("{status}: {}", text.trim());
    }
    if args.json {
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
