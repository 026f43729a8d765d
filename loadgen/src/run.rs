//! One run of the load tool: arguments checked, both listeners probed, pullers and
//! producers (and the flood, if asked for) started, the window measured (or the drain
//! awaited), every task joined, and the report built from the ledger, the metrics and
//! the node's counters read as the window opened and closed (`cost`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wire::paths::HEALTHZ;

use crate::args::{BenchArgs, ispb_names};
use crate::connection::Connection;
use crate::cost;
use crate::flood::Flood;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::report::{self, Report};
use crate::shared::Shared;
use crate::{producer, puller};

/// Runs `pixstream bench`: prints progress and the report, writes `--json`, and fails
/// when the verdict is not clean.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let json = args.json.clone();
    let report = run_bench(args).await?;
    println!("{report}");
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| anyhow!("bench: serialise report: {e}"))?;
        std::fs::write(&path, text + "\n").map_err(|e| anyhow!("bench: write {}: {e}", path.display()))?;
    }
    if report.verdict.clean {
        Ok(())
    } else {
        Err(anyhow!("bench verdict: NOT CLEAN: {}", report.verdict.problems.join("; ")))
    }
}

/// Runs the benchmark described by `args` and returns its report (whatever the
/// verdict). Fails only when the run cannot start (bad arguments, unreachable node).
pub async fn run_bench(args: BenchArgs) -> anyhow::Result<Report> {
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
    let floor = match shared.args.http_floor {
        0 => None,
        secs => {
            let floor =
                cost::measure_floor(&producer_client, &shared.internal_base, secs, shared.args.floor_connections).await;
            eprintln!("{}", report::floor_line(&floor));
            Some(floor)
        }
    };
    let flood = Flood::new(&shared)?.map(Arc::new);
    let templates = Arc::new(producer::Templates::new(&shared.ispbs, shared.args.message_bytes));
    if shared.args.drain_mode() {
        // The preload is not measured; the window opens when the pullers start.
        shared.measure_from_us.store(u64::MAX, Ordering::Relaxed);
    }

    let mut drain_started = None;
    let mut drained_after = None;
    let mut preload_secs = None;
    let window_closed;
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
            let transport = transport_for(&shared, &pull_clients, ispb * shared.args.streams + stream);
            pullers.spawn(puller::run(shared.clone(), transport, ispb, stream));
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
    let flood_task = flood.clone().map(|flood| {
        let run_for = Duration::from_micros(warmup_us) + Duration::from_secs(shared.args.duration);
        tokio::spawn(flood.run(shared.clone(), pulling_from, pulling_from + run_for))
    });
    let progress = (shared.args.progress > 0).then(|| tokio::spawn(progress_lines(shared.clone())));
    // The node's counters and the tool's CPU as the window opens (after warmup).
    let window_opened = {
        let (client, base) = (producer_client.clone(), shared.internal_base.clone());
        let at = pulling_from + Duration::from_micros(warmup_us);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            cost::read(&client, &base).await
        })
    };

    if shared.args.drain_mode() {
        let limit = pulling_from + Duration::from_secs(shared.args.duration);
        drain_started = Some(pulling_from);
        if wait_drained(&shared, limit).await {
            drained_after = Some(pulling_from.elapsed());
        }
        shared.measure_until_us.store(shared.now_us(), Ordering::Relaxed);
        window_closed = cost::read(&producer_client, &shared.internal_base).await;
    } else {
        let window_end = pulling_from + Duration::from_micros(warmup_us) + Duration::from_secs(shared.args.duration);
        tokio::time::sleep_until(window_end.into()).await;
        shared.measure_until_us.store(shared.now_us(), Ordering::Relaxed);
        window_closed = cost::read(&producer_client, &shared.internal_base).await;
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
    if let Some(task) = flood_task {
        // It stops at the end of the window or at `stop_producing`, abandoning the rest.
        let _ = task.await;
    }
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
    let flood = flood.map(|flood| flood.report(measured.as_secs_f64()));
    let readings = window_opened.await.ok().map(|opened| (opened, window_closed));
    Ok(Report::build(&shared, measured, drain, flood, readings, floor))
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

/// Puller `task`'s way to the node: its own HTTP/1.1 connection, unless the run
/// speaks HTTP/2 or asks for gzip (then one of the `reqwest` pools).
fn transport_for(shared: &Shared, pools: &[reqwest::Client], task: usize) -> puller::Transport {
    let own = (!shared.args.http2 && !shared.args.gzip)
        .then(|| Connection::new(&shared.public_base, Duration::from_secs(shared.args.timeout)))
        .flatten();
    match own {
        Some(connection) => puller::Transport::Own(connection),
        None => puller::Transport::Pooled(pools[task % pools.len()].clone()),
    }
}

fn build_client(args: &BenchArgs, gzip: bool) -> anyhow::Result<reqwest::Client> {
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
    builder.build().map_err(|e| anyhow!("bench: http client: {e}"))
}

/// Checks that both listeners answer before starting hundreds of tasks.
async fn preflight(shared: &Shared, client: &reqwest::Client) -> anyhow::Result<()> {
    let unreachable =
        |which: &str, url: &str, e: &dyn std::fmt::Display| anyhow!("bench: {which} API at {url} does not answer: {e}");
    let internal = format!("{}{HEALTHZ}", shared.internal_base);
    client.get(&internal).send().await.map_err(|e| unreachable("internal", &shared.internal_base, &e))?;
    // Any answer will do (404 for an unknown path): only reachability matters.
    let public = format!("{}{HEALTHZ}", shared.public_base);
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
