//! `pixstream cluster members --config new.toml --url http://127.0.0.1:8081`: reads
//! the complete node list (and replication factor) from a cluster config file and
//! posts it to a node's `POST /internal/v1/cluster/members`, which moves every
//! shard's replicas to the placement of that list; prints each shard's voters.
//!
//! Adding a node: start it with `pixstream serve --config new.toml --node-id N --join`,
//! then run this with `new.toml`. Removing one: run this with a file without it, and
//! stop the node only after this command succeeded. `cluster status` and
//! `cluster transfer-leader` live in `cli::cluster_status`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::api::cluster_admin::{MEMBERS_PATH, MembersAnswer, MembersRequest};
use anyhow::Context;

use crate::config::StartMode;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Move shard replicas to the nodes listed in a config file (add or remove nodes).
    Members(MembersArgs),
    /// Every node and shard: leader, term, log indexes, followers' lag.
    Status(super::cluster_status::StatusArgs),
    /// Make another voter lead a shard (the shard pauses for about one election timeout).
    TransferLeader(super::cluster_status::TransferArgs),
}

#[derive(Debug, Args)]
pub struct MembersArgs {
    /// Cluster configuration listing every node that should replicate shards.
    #[arg(long)]
    pub config: PathBuf,
    /// Internal API base URL of any running node.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
    /// Longest the whole change may take.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

/// Runs a `cluster` subcommand.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Members(args) => members(args).await,
        ClusterCommand::Status(args) => super::cluster_status::status(args).await,
        ClusterCommand::TransferLeader(args) => super::cluster_status::transfer(args).await,
    }
}

async fn members(args: MembersArgs) -> anyhow::Result<()> {
    let request = request_from_config(&args.config)?;
    let client = args.auth.client(reqwest::Client::builder().timeout(Duration::from_secs(args.timeout_secs)))?;
    let url = format!("{}{MEMBERS_PATH}", args.url.trim_end_matches('/'));
    let body = serde_json::to_vec(&request).context("encode request")?;
    let response = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.context("read answer")?;
    let Ok(answer) = serde_json::from_str::<MembersAnswer>(&text) else {
        anyhow::bail!("{status}: {text}");
    };
    for shard in &answer.shards {
        println!("shard {}: voters {:?}", shard.shard, shard.voters);
    }
    for failure in &answer.failed {
        println!("shard {}: NOT CHANGED: {}", failure.shard, failure.error);
    }
    if status.is_success() && answer.failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} shards not changed ({status}); the same command can be repeated", answer.failed.len())
    }
}

/// The members request of the node list and replication factor of the config file.
pub fn request_from_config(path: &Path) -> anyhow::Result<MembersRequest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    request_from_text(&text)
}

fn request_from_text(text: &str) -> anyhow::Result<MembersRequest> {
    let file: crate::config::ConfigFile = toml::from_str(text).map_err(crate::config::ConfigError::from)?;
    let first = file.nodes.first().map(|n| n.id).context("config: no nodes")?;
    let map = file.validate(first, StartMode::Bootstrap)?.cluster_map();
    Ok(MembersRequest { nodes: map.nodes, replication_factor: Some(map.replication_factor) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_lists_every_node_of_the_file() {
        let text = r#"
            [[nodes]]
            id = 2
            region = "rj"
            public_addr = "10.0.0.2:8080"
            internal_addr = "10.0.0.2:8081"
            peer_addr = "10.0.0.2:8082"
            [[nodes]]
            id = 4
            region = "sp"
            public_addr = "10.0.0.4:8080"
            internal_addr = "10.0.0.4:8081"
            peer_addr = "10.0.0.4:8082"
            [internal_auth]
            allow_anonymous = true
        "#;
        let request = request_from_text(text).expect("valid file");
        let ids: Vec<(u64, &str, &str)> =
            request.nodes.iter().map(|n| (n.id, n.region.as_str(), n.peer_addr.as_str())).collect();
        assert_eq!(ids, vec![(2, "rj", "10.0.0.2:8082"), (4, "sp", "10.0.0.4:8082")]);
        assert_eq!(request.replication_factor, Some(2), "the default 3 capped at the node count");
        let json = serde_json::to_value(&request).expect("encodes");
        assert_eq!(json["nodes"][1]["id"], 4);
    }
}
