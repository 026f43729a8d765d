//! The `pixstream` binary: parses the command line, sets up logging and the tokio
//! runtime, and runs the chosen subcommand. Failures print one line and exit 1.

use std::process::ExitCode;

use clap::Parser;
use pixstream::cli::{Cli, Command, LogFormat, admin, audit, certs, cluster, pull, send, serve};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the request path allocates small
/// buffers on many threads, where glibc malloc showed ~12 % of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == LogFormat::Json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pixstream: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Send(args) => send::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Bench(args) => loadgen::run(args).await,
            Command::Cluster(args) => cluster::run(args).await,
            Command::Certs(args) => certs::run(args),
            Command::Audit(args) => audit::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Restore(args) => pixstream::cli::backup::restore(args),
            Command::Top(args) => pixstream::cli::top::run(args).await,
        }
    })
}
