//! `pixstream admin tenants …`: the tenant admin calls of the internal listener
//! (`api::tenants_admin`) — `list`, `show --ispb`, `set --ispb` (create or change
//! settings), `pause`/`resume --ispb`, `hold --ispb --reason`/`release --ispb`
//! (legal hold), `close-stream --ispb --stream`, `cursor --ispb --to-seq [--reason]`,
//! `delete --ispb [--force --reason]`
//! — printed as a table, or as the node's JSON with `--json`; and `pixstream admin
//! backup` (`cli::backup`) and `pixstream admin replay` (`cli::replay`).

use anyhow::Context;
use clap::{Args, Subcommand};
use wire::paths::{TENANTS, tenant_cursor_path, tenant_path, tenant_stream_path};

use super::admin_call::with_json;
use crate::api::tenant_actions::{CursorMove, CursorMoved, StreamClosed, TenantDelete, TenantDeleted};
use crate::api::tenants_admin::{LegalHold, TenantList, TenantUpdate, TenantView};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: list, show, create or change settings, pause and resume.
    Tenants(TenantsArgs),
    /// Write an online backup of a node into a new directory on it.
    Backup(super::backup::BackupArgs),
    /// Compliance replay streams: open one from a seq or a time.
    Replay(super::replay::ReplayArgs),
}

#[derive(Debug, Args)]
pub struct TenantsArgs {
    #[command(subcommand)]
    pub command: TenantsCommand,
    /// Internal API base URL of any node.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    /// Print the node's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Every tenant of the shards the node hosts.
    List,
    /// One tenant: settings, backlog, oldest unconfirmed age, open streams.
    Show(IspbArg),
    /// Create a tenant, or change the given settings of one.
    Set(SetArgs),
    /// Refuse the tenant's pulls (503) until resumed; producers may still append.
    Pause(IspbArg),
    /// Serve the tenant's pulls again.
    Resume(IspbArg),
    /// Put a legal hold on the tenant: no retention purge until it is released.
    Hold(HoldArgs),
    /// Lift the tenant's legal hold.
    Release(IspbArg),
    /// Force-close an open stream; its outstanding batch is redelivered.
    CloseStream(CloseStreamArgs),
    /// Move the watermark back to a seq (redeliver from it) or forward (skip, with
    /// a reason); closes every open stream.
    Cursor(CursorArgs),
    /// Delete the tenant (only when empty, or with --force and a reason); its audit
    /// chain stays.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(long)]
    pub ispb: String,
    /// Delete even with unconfirmed messages or open streams (they are discarded).
    #[arg(long)]
    pub force: bool,
    /// Why; required with --force, recorded in the audit chain.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CursorArgs {
    #[arg(long)]
    pub ispb: String,
    /// The new watermark: the first seq delivered (again).
    #[arg(long)]
    pub to_seq: u64,
    /// Why; required to skip forward, recorded in the audit chain.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CloseStreamArgs {
    #[arg(long)]
    pub ispb: String,
    /// The stream id (`tenants show` lists them).
    #[arg(long)]
    pub stream: u64,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[arg(long)]
    pub ispb: String,
    /// Why (a case number, an order): recorded with the hold and in the audit chain.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct IspbArg {
    #[arg(long)]
    pub ispb: String,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[arg(long)]
    pub ispb: String,
    /// Streams open at once (1–6).
    #[arg(long)]
    pub max_streams: Option<u32>,
    /// Unconfirmed messages before producers get 503.
    #[arg(long)]
    pub max_backlog: Option<u64>,
    /// Days confirmed messages are kept.
    #[arg(long)]
    pub retention_days: Option<u64>,
    /// Seconds confirmed messages are kept (at least 60), instead of --retention-days.
    #[arg(long, conflicts_with = "retention_days")]
    pub retention_secs: Option<u64>,
    /// Requests per second (token bucket rate).
    #[arg(long)]
    pub rate_per_sec: Option<u32>,
    /// Token bucket size.
    #[arg(long)]
    pub rate_burst: Option<u32>,
}

/// What an answer holds, for printing it.
enum Answer {
    List,
    Tenant,
    StreamClosed,
    CursorMoved,
    Deleted,
}

/// Runs an `admin` subcommand.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let args = match args.command {
        AdminCommand::Tenants(args) => args,
        AdminCommand::Backup(args) => return super::backup::backup(args).await,
        AdminCommand::Replay(args) => return super::replay::run(args).await,
    };
    let client = args.auth.client(reqwest::Client::builder())?;
    let base = args.url.trim_end_matches('/').to_owned();
    let tenant = |ispb: &str| format!("{base}{}", tenant_path(ispb));
    let put = |ispb: &str, update: TenantUpdate| with_json(client.put(tenant(ispb)), &update);
    let (request, answer) = match args.command {
        TenantsCommand::List => (client.get(format!("{base}{TENANTS}")), Answer::List),
        TenantsCommand::Show(IspbArg { ispb }) => (client.get(tenant(&ispb)), Answer::Tenant),
        TenantsCommand::Set(set) => {
            let update = TenantUpdate {
                max_streams: set.max_streams,
                max_backlog: set.max_backlog,
                retention_days: set.retention_days,
                retention_secs: set.retention_secs,
                rate_per_sec: set.rate_per_sec,
                rate_burst: set.rate_burst,
                paused: None,
                legal_hold: None,
            };
            (put(&set.ispb, update)?, Answer::Tenant)
        }
        TenantsCommand::Pause(IspbArg { ispb }) => {
            (put(&ispb, TenantUpdate { paused: Some(true), ..TenantUpdate::default() })?, Answer::Tenant)
        }
        TenantsCommand::Resume(IspbArg { ispb }) => {
            (put(&ispb, TenantUpdate { paused: Some(false), ..TenantUpdate::default() })?, Answer::Tenant)
        }
        TenantsCommand::Hold(HoldArgs { ispb, reason }) => {
            let hold = LegalHold { on: true, reason };
            (put(&ispb, TenantUpdate { legal_hold: Some(hold), ..TenantUpdate::default() })?, Answer::Tenant)
        }
        TenantsCommand::Release(IspbArg { ispb }) => {
            let lift = LegalHold { on: false, reason: String::new() };
            (put(&ispb, TenantUpdate { legal_hold: Some(lift), ..TenantUpdate::default() })?, Answer::Tenant)
        }
        TenantsCommand::CloseStream(CloseStreamArgs { ispb, stream }) => {
            (client.delete(format!("{base}{}", tenant_stream_path(&ispb, stream))), Answer::StreamClosed)
        }
        TenantsCommand::Cursor(CursorArgs { ispb, to_seq, reason }) => {
            let request = client.post(format!("{base}{}", tenant_cursor_path(&ispb)));
            (with_json(request, &CursorMove { to_seq, reason })?, Answer::CursorMoved)
        }
        TenantsCommand::Delete(DeleteArgs { ispb, force, reason }) => {
            (with_json(client.delete(tenant(&ispb)), &TenantDelete { force, reason })?, Answer::Deleted)
        }
    };
    let body = super::admin_call::answer(request).await?;
    if args.json {
        println!("{}", body.trim());
        return Ok(());
    }
    match answer {
        Answer::List => print_list(&serde_json::from_str(&body).context("tenant list")?),
        Answer::Tenant => print_tenant(&serde_json::from_str(&body).context("tenant")?),
        Answer::StreamClosed => {
            let closed: StreamClosed = serde_json::from_str(&body).context("answer")?;
            println!(
                "stream {} closed, {} messages back for redelivery, {} streams open",
                closed.stream, closed.redelivered, closed.open_streams
            );
        }
        Answer::Deleted => {
            let deleted: TenantDeleted = serde_json::from_str(&body).context("answer")?;
            println!(
                "tenant {} deleted: {} unconfirmed messages discarded, {} streams closed",
                deleted.ispb, deleted.discarded, deleted.closed_streams
            );
        }
        Answer::CursorMoved => {
            let moved: CursorMoved = serde_json::from_str(&body).context("answer")?;
            println!(
                "watermark moved from {} to {}, {} streams closed",
                moved.from_seq, moved.to_seq, moved.closed_streams
            );
        }
    }
    Ok(())
}

fn print_list(list: &TenantList) {
    println!("{:<10} {:>10} {:>8}  PAUSED", "ISPB", "BACKLOG", "STREAMS");
    for t in &list.tenants {
        println!("{:<10} {:>10} {:>8}  {}", t.ispb, t.backlog, t.open_streams, if t.paused { "yes" } else { "no" });
    }
    if !list.unhosted_shards.is_empty() {
        println!("(shards {:?} are not hosted on this node: their tenants are not listed)", list.unhosted_shards);
    }
}

fn print_tenant(t: &TenantView) {
    let s = &t.settings;
    println!("ISPB {}{}", t.ispb, if s.paused { "  (paused)" } else { "" });
    if let Some(reason) = &s.legal_hold {
        println!("legal hold: {reason} (no retention purge)");
    }
    println!(
        "settings: max_streams {}  max_backlog {}  retention_days {}  rate_per_sec {}  rate_burst {}",
        s.max_streams, s.max_backlog, s.retention_days, s.rate_per_sec, s.rate_burst
    );
    println!(
        "backlog {}  oldest unconfirmed {:.1} s  watermark {}  next seq {}  pending redelivery {}",
        t.backlog,
        t.oldest_unconfirmed_age_ms as f64 / 1000.0,
        t.watermark,
        t.next_seq,
        t.redelivery_pending
    );
    println!("streams {}/{}", t.streams.len(), s.max_streams);
    for stream in &t.streams {
        println!(
            "  stream {:<6} open {:>8.1} s  outstanding {}",
            stream.id,
            stream.age_ms as f64 / 1000.0,
            stream.outstanding
        );
    }
}
