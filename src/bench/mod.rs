//! `pixstream bench`: the load tool of SPEC.md §8. Against any deployment (by URL) it
//! simulates `--ispbs` participants × `--streams` pullers that follow `PI-Pull-Next`
//! with `Accept: multipart/mixed` on keep-alive connections, and producers that post
//! sample SPI envelopes at `--rate` messages per second (or `--preload` a backlog and
//! measure how fast it drains). Every delivered message is checked against what was
//! produced by a ledger (no loss, never outstanding in two streams at once, per-stream
//! seq order, one id per seq); the report gives pulls per minute, messages per second,
//! pull and end-to-end latency percentiles and error counts, and the process exits
//! non-zero when the verdict is not clean.
//!
//! Modules: `producer` (message templates, posting, rate control), `puller` (one
//! stream's loop and the zero-copy response scanner), `ledger` (the correctness
//! checker), `metrics` (sharded latency histograms and counters), `report` (the final
//! report, its text form and the verdict).
//!
//! Modes:
//! - duration (default): producers and pullers run `--warmup` + `--duration` seconds;
//!   numbers cover the `--duration` window; what was produced but not yet received is
//!   reported as "undelivered at end", not as loss. With `--drain`, producers stop at
//!   the end of the window and pullers continue until everything produced was received
//!   (bounded by `--drain-timeout`), so loss is checked too.
//! - drain (`--preload N`): N messages per ISPB are posted first, then the pullers start
//!   and run until everything produced was received (bounded by `--duration`); the
//!   report gives the time to empty.

pub mod ledger;
pub mod metrics;
pub mod producer;
pub mod puller;
pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use ledger::Ledger;
use metrics::Metrics;
pub use report::Report;

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

    fn validate(&self) -> Result<(), ApiError> {
        let bad = |what: String| Err(ApiError::Startup(format!("bench: {what}")));
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
        ispb_names(&self.ispb_prefix, self.ispbs).map(|_| ())
    }
}

/// The ISPBs of a run: `prefix` then the index zero-padded to 8 characters.
pub fn ispb_names(prefix: &str, count: usize) -> Result<Vec<String>, ApiError> {
    let valid_prefix = prefix.len() < 8 && prefix.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !valid_prefix {
        return Err(ApiError::Startup(format!(
            "bench: --ispb-prefix {prefix:?} must be 0 to 7 characters of [0-9A-Z]"
        )));
    }
    let width = 8 - prefix.len();
    let capacity = 10u64.checked_pow(width as u32).unwrap_or(u64::MAX);
    if count as u64 > capacity {
        return Err(ApiError::Startup(format!(
            "bench: --ispb-prefix {prefix:?} leaves room for {capacity} ISPBs, {count} asked"
        )));
    }
    Ok((0..count).map(|i| format!("{prefix}{i:0width$}")).collect())
}

/// What every task of a run shares.
pub(crate) struct Shared {
    pub args: BenchArgs,
    pub ispbs: Vec<String>,
    pub public_base: String,
    pub internal_base: String,
    pub ledger: Ledger,
    pub metrics: Metrics,
    /// Time zero of the run; every timestamp is microseconds since it.
    pub epoch: Instant,
    /// Measuring window, µs since `epoch`: requests completing inside it are counted.
    pub measure_from_us: AtomicU64,
    pub measure_until_us: AtomicU64,
    /// Cancelled when producers must stop starting requests.
    pub stop_producing: CancellationToken,
    /// Cancelled when pullers must stop (in-flight requests are abandoned).
    pub stop_pulling: CancellationToken,
    /// Producer requests not yet answered (including retries).
    pub producers_busy: AtomicU64,
}

impl Shared {
    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether something that completed at `at_us` counts in the measured numbers.
    pub fn measuring(&self, at_us: u64) -> bool {
        at_us >= self.measure_from_us.load(Ordering::Relaxed) && at_us < self.measure_until_us.load(Ordering::Relaxed)
    }
}

/// Runs `pixstream bench`: prints progress and the report, writes `--json`, and fails
/// when the verdict is not clean.
pub async fn run(args: BenchArgs) -> Result<(), ApiError> {
    let json = args.json.clone();
    let report = run_bench(args).await?;
    println!("{report}");
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| ApiError::Startup(format!("bench: serialise report: {e}")))?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| ApiError::Startup(format!("bench: write {}: {e}", path.display())))?;
    }
    if report.verdict.clean {
        Ok(())
    } else {
        Err(ApiError::Startup(format!("bench verdict: NOT CLEAN: {}", report.verdict.problems.join("; "))))
    }
}

/// Runs the benchmark described by `args` and returns its report (whatever the
/// verdict). Fails only when the run cannot start (bad arguments, unreachable node).
pub async fn run_bench(args: BenchArgs) -> Result<Report, ApiError> {
    args.validate()?;
    let ispbs = ispb_names(&args.ispb_prefix, args.ispbs)?;
    let producer_client = build_client(&args, false)?;
    let pull_clients = (0..args.clients).map(|_| build_client(&args, args.gzip)).collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        ledger: Ledger::new(ispbs.clone(), args.streams),
        metrics: Metrics::new(),
        public_base: args.url.trim_end_matches('/').to_owned(),
        internal_base: args.internal_url.trim_end_matches('/').to_owned(),
        ispbs,
        epoch: Instant::now(),
        measure_from_us: AtomicU64::new(0),
        measure_until_us: AtomicU64::new(u64::MAX),
        stop_producing: CancellationToken::new(),
        stop_pulling: CancellationToken::new(),
        producers_busy: AtomicU64::new(0),
        args,
    });
    preflight(&shared, &producer_client).await?;
    let templates = Arc::new(producer::Templates::new(&shared.ispbs, shared.args.message_bytes));
    if shared.args.drain_mode() {
        // The preload is not measured; the window opens when the pullers start.
        shared.measure_from_us.store(u64::MAX, Ordering::Relaxed);
    }

    let mut drain_started = None;
    let mut drained_after = None;
    let mut preload_secs = None;
    if shared.args.drain_mode() {
        let started = Instant::now();
        producer::preload(&shared, &producer_client, &templates).await;
        preload_secs = Some(started.elapsed().as_secs_f64());
        eprintln!(
            "preloaded {} messages in {:.2} s; pulling until drained (at most {} s)",
            shared.ledger.produced(),
            started.elapsed().as_secs_f64(),
            shared.args.duration
        );
    }

    // Pullers (and, in duration mode, producers) start now; progress intervals too.
    let _ = shared.metrics.take_interval();
    let pulling_from = Instant::now();
    let from_us = shared.now_us();
    let warmup_us = if shared.args.drain_mode() { 0 } else { shared.args.warmup * 1_000_000 };
    shared.measure_from_us.store(from_us + warmup_us, Ordering::Relaxed);
    let mut pullers = JoinSet::new();
    for ispb in 0..shared.ispbs.len() {
        for stream in 0..shared.args.streams {
            let client = pull_clients[(ispb * shared.args.streams + stream) % pull_clients.len()].clone();
            pullers.spawn(puller::run(shared.clone(), client, ispb, stream));
        }
    }
    let mut producers = JoinSet::new();
    if !shared.args.drain_mode() {
        let tickets = Arc::new(AtomicU64::new(0));
        let deadline = pulling_from + Duration::from_micros(warmup_us) + Duration::from_secs(shared.args.duration);
        for task in 0..shared.args.producers {
            let (shared, client, templates, tickets) =
                (shared.clone(), producer_client.clone(), templates.clone(), tickets.clone());
            producers.spawn(producer::run_at_rate(shared, client, templates, tickets, task, pulling_from, deadline));
        }
    }
    let progress = (shared.args.progress > 0).then(|| tokio::spawn(progress_lines(shared.clone())));

    if shared.args.drain_mode() {
        let limit = pulling_from + Duration::from_secs(shared.args.duration);
        drain_started = Some(pulling_from);
        if wait_drained(&shared, limit).await {
            drained_after = Some(pulling_from.elapsed());
        }
        shared.measure_until_us.store(shared.now_us(), Ordering::Relaxed);
    } else {
        let window_end = pulling_from + Duration::from_micros(warmup_us) + Duration::from_secs(shared.args.duration);
        tokio::time::sleep_until(window_end.into()).await;
        shared.measure_until_us.store(shared.now_us(), Ordering::Relaxed);
        shared.stop_producing.cancel();
        if shared.args.drain {
            // Producers finish what is in flight; then pull until everything arrived.
            let started = Instant::now();
            join_bounded(&mut producers, Duration::from_secs(shared.args.timeout + 5)).await;
            drain_started = Some(started);
            let limit = started + Duration::from_secs(shared.args.drain_timeout);
            if wait_drained(&shared, limit).await {
                drained_after = Some(started.elapsed());
            }
        }
    }
    shared.stop_producing.cancel();
    shared.stop_pulling.cancel();
    join_bounded(&mut producers, Duration::from_secs(shared.args.timeout + 5)).await;
    join_bounded(&mut pullers, Duration::from_secs(shared.args.timeout + 5)).await;
    if let Some(task) = progress {
        task.abort();
    }
    let measured = Duration::from_micros(
        shared.measure_until_us.load(Ordering::Relaxed).saturating_sub(shared.measure_from_us.load(Ordering::Relaxed)),
    );
    let drain = drain_started.map(|_| report::Drain {
        drained: drained_after.is_some(),
        time_to_empty_secs: drained_after.map(|d| d.as_secs_f64()),
        preload_secs,
    });
    Ok(Report::build(&shared, measured, drain))
}

/// Waits until every message produced so far was received and no producer request is
/// pending, or until `limit`; true when drained.
async fn wait_drained(shared: &Shared, limit: Instant) -> bool {
    loop {
        let producers_idle = shared.producers_busy.load(Ordering::Acquire) == 0;
        if producers_idle && shared.ledger.undelivered() == 0 {
            return true;
        }
        if Instant::now() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Joins every task, abandoning the rest after `limit`.
async fn join_bounded(tasks: &mut JoinSet<()>, limit: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, all).await.is_err() {
        eprintln!("bench: {} tasks did not finish in {limit:?}; abandoned", tasks.len());
        tasks.abort_all();
    }
}

fn build_client(args: &BenchArgs, gzip: bool) -> Result<reqwest::Client, ApiError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .gzip(gzip);
    if args.http2 {
        builder = builder.http2_prior_knowledge();
    } else {
        builder = builder.http1_only();
    }
    builder.build().map_err(|e| ApiError::Startup(format!("bench: http client: {e}")))
}

/// Checks that both listeners answer before starting hundreds of tasks.
async fn preflight(shared: &Shared, client: &reqwest::Client) -> Result<(), ApiError> {
    let unreachable = |which: &str, url: &str, e: &dyn std::fmt::Display| {
        ApiError::Startup(format!("bench: {which} API at {url} does not answer: {e}"))
    };
    let internal = format!("{}/healthz", shared.internal_base);
    client.get(&internal).send().await.map_err(|e| unreachable("internal", &shared.internal_base, &e))?;
    // Any answer will do (404 for an unknown path): only reachability matters.
    let public = format!("{}/healthz", shared.public_base);
    client.get(&public).send().await.map_err(|e| unreachable("public", &shared.public_base, &e))?;
    Ok(())
}

/// Prints one line every `--progress` seconds: rates and latencies of the last interval.
async fn progress_lines(shared: Arc<Shared>) {
    let every = Duration::from_secs(shared.args.progress);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let seconds = last.elapsed().as_secs_f64().max(1e-9);
        last = Instant::now();
        let interval = shared.metrics.take_interval();
        eprintln!("{}", report::progress_line(&shared, &interval, seconds));
    }
}
