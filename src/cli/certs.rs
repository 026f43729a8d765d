//! `pixstream certs dev --out DIR [--config cluster.toml] [--psp ISPB]…`: writes a
//! development CA, certificates for every node of the cluster, PSP and operator
//! client certificates, bearer tokens, the access files and `cluster-tls.toml`
//! (see `certs::bundle`), then prints how to start and call the secured nodes.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::certs::bundle::{BundleSpec, write_bundle};

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a development bundle (never for production: one CA signs everything).
    Dev(DevArgs),
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Folder to write into (created if missing; existing files are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Cluster configuration whose nodes get certificates; without it, one node on
    /// 127.0.0.1:8443 (public), :8444 (internal), :8445 (peer).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ISPB that gets a PSP client certificate (repeatable).
    #[arg(long = "psp", default_value = "12345678")]
    pub psps: Vec<String>,
}

/// Runs `pixstream certs …`.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let CertsCommand::Dev(args) = args.command;
    let cluster_toml = match &args.config {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let bundle = write_bundle(&BundleSpec { out: args.out.clone(), cluster_toml, psps: args.psps.clone() })?;
    println!("wrote {} files into {}", bundle.files.len(), args.out.display());
    let dir = args.out.display();
    let psp = args.psps.first().map_or("12345678", String::as_str);
    let (public, internal) = (&bundle.first_public, &bundle.first_internal);
    println!("start node 1:   pixstream serve --config {} --node-id 1", bundle.config.display());
    println!(
        "produce:        curl --cacert {dir}/ca.pem -H \"Authorization: Bearer $(cat {dir}/producer.token)\" -H 'Content-Type: application/xml' --data-binary @msg.xml https://{internal}/internal/v1/out/{psp}/msgs"
    );
    println!(
        "pull as a PSP:  curl --cacert {dir}/ca.pem --cert {dir}/psp-{psp}.pem --key {dir}/psp-{psp}.key https://{public}/api/v1/out/{psp}/stream/start"
    );
    Ok(())
}
