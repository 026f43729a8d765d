//! `BenchArgs`: the command line of `pixstream bench`, its validation, and the names of
//! the simulated ISPBs (and of the flooded one, which must not be among them).

use anyhow::bail;
use clap::{Args, Parser};

/// Largest number of messages the producer API takes in one request (SPEC.md §3).
const MAX_PRODUCER_BATCH: usize = 100;

#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Public (PSP) API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Internal (producer) API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub internal_url: String,
    /// Simulated participants (ISPBs).
    #[arg(long, default_value_t = 1000)]
    pub ispbs: usize,
    /// Pullers (streams) per ISPB; the server allows 6 per ISPB.
    #[arg(long, default_value_t = 6)]
    pub streams: usize,
    /// ISPBs are this prefix followed by a zero-padded index, 8 characters of [0-9A-Z].
    #[arg(long, default_value = "B")]
    pub ispb_prefix: String,
    /// Messages per second produced in total, spread round-robin over the ISPBs
    /// (0 = as fast as `--producers` concurrent posters can go).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Concurrent producer requests.
    #[arg(long, default_value_t = 16)]
    pub producers: usize,
    /// Messages per producer request (1 posts bare XML, more a multipart batch; ≤ 100).
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Approximate size of each message in bytes (pacs.008 padded with remittance lines).
    #[arg(long, default_value_t = 2048)]
    pub message_bytes: usize,
    /// Seconds measured (duration mode); in drain mode the longest wait for the drain.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds run before measuring starts (duration mode only).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Drain mode: post this many messages per ISPB first, then pull until all arrived.
    #[arg(long, default_value_t = 0)]
    pub preload: usize,
    /// Duration mode: after the window, stop producing and pull until everything
    /// produced was received (then undelivered messages count as lost).
    #[arg(long)]
    pub drain: bool,
    /// Longest wait for the drain that follows the window with `--drain`, in seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout: u64,
    /// Ask for gzip-compressed pull responses.
    #[arg(long)]
    pub gzip: bool,
    /// Pull one message per request (`Accept: application/xml`, a bare XML answer)
    /// instead of up to 10 (`Accept: multipart/mixed`).
    #[arg(long)]
    pub single: bool,
    /// Speak HTTP/2 (prior knowledge, plain text) instead of HTTP/1.1; raise `--clients`
    /// so that each connection carries at most ~100 long polls.
    #[arg(long)]
    pub http2: bool,
    /// HTTP clients (connection pools) the pullers are spread over.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Per-request timeout in seconds; must exceed the server's long-poll wait.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value_t = 5)]
    pub progress: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Flood this extra ISPB (not one of the measured ones) with `stream/start`
    /// requests during warmup and window; its answers are reported apart.
    #[arg(long, requires = "flood_rate")]
    pub flood_ispb: Option<String>,
    /// Flood requests per second, sent on schedule whatever the answers (open loop).
    #[arg(long, requires = "flood_ispb")]
    pub flood_rate: Option<u64>,
    /// Before the run, measure the HTTP floor for this many seconds: `GET /healthz`
    /// on the internal listener as fast as `--floor-connections` loops go, with the
    /// server's and this tool's CPU per request (0 = skip).
    #[arg(long, default_value_t = 0)]
    pub http_floor: u64,
    /// Keep-alive connections of the floor measurement.
    #[arg(long, default_value_t = 64)]
    pub floor_connections: usize,
}

impl BenchArgs {
    /// Parses bench arguments as the command line would (`args` without the program
    /// name), e.g. `["--ispbs", "5"]`; for tests and embedding.
    pub fn from_args<I, T>(args: I) -> Result<BenchArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        #[command(name = "bench")]
        struct Wrapper {
            #[command(flatten)]
            args: BenchArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("bench")).chain(args.into_iter().map(Into::into));
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    /// Drain mode (`--preload`).
    pub fn drain_mode(&self) -> bool {
        self.preload > 0
    }

    /// Checks the limits clap cannot express; the message names the offending flags.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let bad = |what: String| Err(anyhow::anyhow!("bench: {what}"));
        if self.ispbs == 0 || self.streams == 0 {
            return bad("--ispbs and --streams must be at least 1".into());
        }
        if self.batch == 0 || self.batch > MAX_PRODUCER_BATCH {
            return bad(format!("--batch must be 1 to {MAX_PRODUCER_BATCH}"));
        }
        if self.producers == 0 || self.clients == 0 {
            return bad("--producers and --clients must be at least 1".into());
        }
        if self.duration == 0 || self.timeout == 0 {
            return bad("--duration and --timeout must be at least 1 second".into());
        }
        if self.streams > u16::MAX as usize - 1 {
            return bad("--streams is too large".into());
        }
        let ispbs = ispb_names(&self.ispb_prefix, self.ispbs)?;
        if let Some(flood) = &self.flood_ispb {
            if flood.len() != 8 || !flood.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
                return bad(format!("--flood-ispb {flood:?} must be 8 characters of [0-9A-Z]"));
            }
            if ispbs.contains(flood) {
                return bad(format!("--flood-ispb {flood} is one of the measured ISPBs; pick another"));
            }
        }
        if self.http_floor > 0 && self.floor_connections == 0 {
            return bad("--floor-connections must be at least 1".into());
        }
        if self.flood_rate == Some(0) {
            return bad("--flood-rate must be at least 1".into());
        }
        Ok(())
    }
}

/// The ISPBs of a run: `prefix` then the index zero-padded to 8 characters.
pub fn ispb_names(prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let valid_prefix = prefix.len() < 8 && prefix.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !valid_prefix {
        bail!("bench: --ispb-prefix {prefix:?} must be 0 to 7 characters of [0-9A-Z]");
    }
    let width = 8 - prefix.len();
    let capacity = 10u64.checked_pow(width as u32).unwrap_or(u64::MAX);
    if count as u64 > capacity {
        bail!("bench: --ispb-prefix {prefix:?} leaves room for {capacity} ISPBs, {count} asked");
    }
    Ok((0..count).map(|i| format!("{prefix}{i:0width$}")).collect())
}
