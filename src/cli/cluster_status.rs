//! `pixstream cluster status`: every node and every shard's Raft state (leader,
//! term, indexes, each follower's lag) as the shards' leaders report it
//! (`GET /internal/v1/cluster/status`); `pixstream cluster transfer-leader --shard S
//! --to N`: makes node N lead shard S (`POST /internal/v1/cluster/shards/{S}/leader`).

use anyhow::Context;
use clap::Args;
use wire::paths::{CLUSTER_STATUS, cluster_shard_leader_path};

use super::admin_call::{AdminTarget, answer, with_json};
use crate::api::cluster_status::{ClusterStatus, LeaderTransfer, ShardView};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub node: AdminTarget,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The shard whose leadership moves.
    #[arg(long)]
    pub shard: u32,
    /// The node that should lead it (one of the shard's voters).
    #[arg(long)]
    pub to: u64,
    #[command(flatten)]
    pub status: StatusArgs,
}

/// `cluster status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let body = answer(args.node.client()?.get(args.node.url(CLUSTER_STATUS))).await?;
    if args.node.json {
        println!("{}", body.trim());
        return Ok(());
    }
    let status: ClusterStatus = serde_json::from_str(&body).context("cluster status")?;
    println!("{:<6} {:<10} PEER ADDRESS", "NODE", "REGION");
    for node in &status.nodes {
        println!("{:<6} {:<10} {}", node.id, node.region, node.peer_addr);
    }
    println!();
    println!(
        "{:<6} {:>6} {:>6} {:>10} {:>10} {:>10}  VOTERS   FOLLOWER LAG",
        "SHARD", "LEADER", "TERM", "LAST LOG", "APPLIED", "SNAPSHOT"
    );
    for shard in &status.shards {
        print_shard(shard);
    }
    Ok(())
}

/// `cluster transfer-leader`.
pub async fn transfer(args: TransferArgs) -> anyhow::Result<()> {
    let node = &args.status.node;
    let request = node.client()?.post(node.url(&cluster_shard_leader_path(args.shard)));
    let body = answer(with_json(request, &LeaderTransfer { to: args.to })?).await?;
    if node.json {
        println!("{}", body.trim());
        return Ok(());
    }
    let shard: ShardView = serde_json::from_str(&body).context("shard")?;
    println!("shard {} is led by node {:?} in term {}", shard.shard, shard.leader, shard.term);
    Ok(())
}

fn print_shard(s: &ShardView) {
    let leader = s.leader.map_or_else(|| "-".to_owned(), |l| l.to_string());
    let lag: Vec<String> = s.followers.iter().map(|f| format!("{}:{}", f.node, f.lag_entries)).collect();
    println!(
        "{:<6} {:>6} {:>6} {:>10} {:>10} {:>10}  {:<8} {}",
        s.shard,
        leader,
        s.term,
        s.last_log_index,
        s.applied_index,
        s.snapshot_index,
        format!("{:?}", s.voters),
        lag.join(" ")
    );
    if let Some(error) = &s.error {
        println!("       (seen from node {}: {error})", s.seen_from);
    }
}
