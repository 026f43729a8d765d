//! The `pixstream` command line: `serve` runs a node, `send` posts sample or given
//! messages to the producer API, `pull` follows a stream like a PSP would, `bench`
//! load-tests a deployment, `cluster` changes which nodes replicate the shards,
//! `certs dev` writes development certificates, tokens and a TLS configuration,
//! `audit` exports and verifies the audit chain, `top` shows nodes' metrics live,
//! `admin` lists, shows, creates, changes and pauses tenants and backs a node up,
//! `restore` rebuilds a node from a backup.

pub mod admin;
pub mod admin_call;
pub mod audit;
pub mod backup;
pub mod certs;
pub mod client_auth;
pub mod cluster;
pub mod cluster_status;
pub mod pull;
pub mod replay;
pub mod send;
pub mod serve;
pub mod top;

use clap::{Parser, Subcommand};

/// Pix outgoing message stream appliance.
#[derive(Debug, Parser)]
#[command(name = "pixstream", version, about)]
pub struct Cli {
    /// Log lines as `text` or as `json` (one object per line, with the request's
    /// span: request id, route, ISPB, shard, stream, node).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (with no arguments: the embedded single-node default).
    Serve(serve::ServeArgs),
    /// Post messages to a node's producer API.
    Send(send::SendArgs),
    /// Follow an ISPB's stream and print or save what arrives.
    Pull(pull::PullArgs),
    /// Load-test a deployment: many ISPBs x streams, producers, a correctness ledger.
    Bench(loadgen::BenchArgs),
    /// Administer the cluster: move shard replicas when nodes are added or removed.
    Cluster(cluster::ClusterArgs),
    /// Development certificates: a CA, node, PSP and operator certificates, tokens.
    Certs(certs::CertsArgs),
    /// Administer tenants: list, show, create or change settings, pause, resume.
    Admin(admin::AdminArgs),
    /// Rebuild a stopped node's data dir from a backup (`admin backup`).
    Restore(backup::RestoreArgs),
    /// Export an ISPB's audit chain, or verify exported chains.
    Audit(audit::AuditArgs),
    /// Live terminal view of nodes' metrics: shards, load, rates and the ISPBs by backlog.
    Top(top::TopArgs),
}
