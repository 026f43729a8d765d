//! `pixstream audit`: `export` writes an ISPB's audit chain as JSON lines (asking the
//! node to seal it first, so the export ends on a checkpoint); `verify` checks
//! exports against the checkpoint public keys and reports every finding — records
//! checked, the first broken link (seq, expected and actual hash), a log cut short
//! of a checkpoint, an unsealed tail, signatures that fail — exiting non-zero on any.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use storage::audit::{AuditEntry, verify_entries};
use wire::paths::{CLUSTER_AUDIT_EXPORT, CLUSTER_AUDIT_SEAL, audit_export_path, audit_seal_path};

use crate::audit::read_public_keys;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write an ISPB's (or the cluster's) audit chain (records and checkpoints) as JSON lines.
    Export(ExportArgs),
    /// Verify exported chains: hashes, links, checkpoints and their signatures.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The participant whose chain to export.
    #[arg(long, required_unless_present = "cluster", conflicts_with = "cluster")]
    pub ispb: Option<String>,
    /// Export the cluster's own chain instead: membership changes, and access
    /// events of ISPBs that have no tenant.
    #[arg(long)]
    pub cluster: bool,
    /// Internal API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
    /// Records from this time on (epoch milliseconds).
    #[arg(long)]
    pub from_ms: Option<u64>,
    /// Records up to this time (epoch milliseconds); the export runs on to the next
    /// checkpoint.
    #[arg(long)]
    pub to_ms: Option<u64>,
    /// Do not ask the node to seal the chain first.
    #[arg(long)]
    pub no_seal: bool,
    /// Also the records after the newest checkpoint.
    #[arg(long)]
    pub unsealed: bool,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Exported JSON-lines files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Folder(s) of `<kid>.pub` checkpoint public keys (each node's `[audit] key_dir`).
    #[arg(long = "keys", required = true)]
    pub key_dirs: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the chosen audit command.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Verify(args) => verify(&args),
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = args.auth.client(reqwest::Client::builder())?;
    let base = args.url.trim_end_matches('/');
    let (export_path, seal_path) = match &args.ispb {
        Some(ispb) => (audit_export_path(ispb), audit_seal_path(ispb)),
        None => (CLUSTER_AUDIT_EXPORT.to_owned(), CLUSTER_AUDIT_SEAL.to_owned()),
    };
    if !args.no_seal {
        let answer = client.post(format!("{base}{seal_path}")).send().await.context("seal")?;
        if !answer.status().is_success() {
            bail!("seal: {} {}", answer.status(), answer.text().await.unwrap_or_default());
        }
    }
    let mut query = vec![];
    if let Some(from) = args.from_ms {
        query.push(format!("from_ms={from}"));
    }
    if let Some(to) = args.to_ms {
        query.push(format!("to_ms={to}"));
    }
    if args.unsealed {
        query.push("unsealed=true".to_owned());
    }
    let url = format!("{base}{export_path}?{}", query.join("&"));
    let answer = client.get(url).send().await.context("export")?;
    if !answer.status().is_success() {
        bail!("export: {} {}", answer.status(), answer.text().await.unwrap_or_default());
    }
    let body = answer.bytes().await.context("export body")?;
    match &args.out {
        Some(path) => std::fs::write(path, &body).with_context(|| format!("write {}", path.display()))?,
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let keys = read_public_keys(&args.key_dirs)?;
    if keys.is_empty() {
        bail!("no <kid>.pub file in the --keys folders");
    }
    let mut entries = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let entry: AuditEntry = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not an audit record or checkpoint", path.display(), number + 1))?;
            entries.push(entry);
        }
    }
    let report = verify_entries(&entries, &keys);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} chains, {} records and {} checkpoints checked",
            report.chains, report.records_checked, report.checkpoints_checked
        );
        match report.first_broken() {
            Some(first) => println!("first broken link: {first}"),
            None => println!("every link holds"),
        }
        for finding in &report.findings {
            println!("finding: {finding}");
        }
    }
    if !report.is_clean() {
        bail!("{} findings", report.findings.len());
    }
    Ok(())
}
