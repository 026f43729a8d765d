//! `pixstream top --url http://node-1:8081 --url http://node-2:8081`: a live terminal
//! view of one node or a cluster for an operator without Grafana. Owns the command:
//! every `--interval` it scrapes each node's `GET /metrics` (internal listener, with
//! the shared client auth flags), keeps each node's last good reading to compute
//! rates, and redraws the screen (ANSI clear, no TUI) with a frame: per node its
//! shards, load, rates, CPU and memory — or why it could not be read — and the ISPBs
//! of the whole cluster by backlog. `--once` prints one frame (two scrapes an
//! interval apart, so rates are real) without clearing and exits. Ctrl-C ends it.
//!
//! The parts: `exposition` reads the Prometheus text, `reading` picks what `top`
//! needs out of it, `frame` merges the nodes and computes rates, `render` lays the
//! frame out as text.

mod exposition;
mod frame;
mod reading;
mod render;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use self::exposition::Exposition;
use self::frame::{Scraped, frame};
use self::reading::NodeReading;

/// Longest one node's scrape may take before it is shown as unreachable.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// Moves the cursor home and clears the screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Internal listener base URL of a node (repeat for every node of a cluster).
    #[arg(long = "url", default_value = "http://127.0.0.1:8081")]
    pub urls: Vec<String>,
    /// Seconds between scrapes (fractions allowed).
    #[arg(long, default_value = "1", value_parser = seconds)]
    pub interval: Duration,
    /// ISPB rows shown, largest backlog first.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Print one frame (two scrapes an interval apart) without clearing the screen, and exit.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
}

/// Runs `top` until Ctrl-C (or after one frame with `--once`).
pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    let client = args.auth.client(reqwest::Client::builder().timeout(SCRAPE_TIMEOUT))?;
    let session = async { if args.once { once(&client, &args).await } else { live(&client, &args).await } };
    tokio::select! {
        result = session => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Two scrapes an interval apart, one frame printed as is; fails when no node answered.
async fn once(client: &reqwest::Client, args: &TopArgs) -> anyhow::Result<()> {
    let first = keep_good(Vec::new(), scrape_all(client, &args.urls).await);
    tokio::time::sleep(args.interval).await;
    let current = scrape_all(client, &args.urls).await;
    print_frame(&render_frame(args, &first, &current), false)?;
    anyhow::ensure!(current.iter().any(Result::is_ok), "no node answered");
    Ok(())
}

/// A frame every interval, the screen cleared before each.
async fn live(client: &reqwest::Client, args: &TopArgs) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = Vec::new();
    loop {
        ticks.tick().await;
        let current = scrape_all(client, &args.urls).await;
        print_frame(&render_frame(args, &previous, &current), true)?;
        previous = keep_good(previous, current);
    }
}

fn render_frame(args: &TopArgs, previous: &[Option<NodeReading>], current: &[Scraped]) -> String {
    let now = wire::clock::format_utc_ms(wire::clock::now_ms());
    let now = format!("{} UTC", now.get(..19).unwrap_or(&now).replace('T', " "));
    render::render(&frame(&args.urls, previous, current), &now, args.interval.as_secs_f64(), args.top)
}

fn print_frame(text: &str, clear: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if clear {
        out.write_all(CLEAR_SCREEN.as_bytes())?;
    }
    out.write_all(text.as_bytes())?;
    out.flush().context("write to the terminal")
}

/// Each node's newest good reading: this scrape's, or the one before when it failed.
fn keep_good(previous: Vec<Option<NodeReading>>, current: Vec<Scraped>) -> Vec<Option<NodeReading>> {
    let mut previous = previous.into_iter();
    current.into_iter().map(|now| (now.ok(), previous.next().flatten())).map(|(now, before)| now.or(before)).collect()
}

/// Scrapes every URL at once; results in the order of `urls`.
async fn scrape_all(client: &reqwest::Client, urls: &[String]) -> Vec<Scraped> {
    let tasks: Vec<_> = urls.iter().map(|url| tokio::spawn(scrape(client.clone(), url.clone()))).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| Err(format!("scrape failed: {e}"))));
    }
    results
}

/// One node's reading, or the error as one line: what failed and its root cause
/// (the URL is on the node's line already).
async fn scrape(client: reqwest::Client, url: String) -> Scraped {
    fetch(&client, &url).await.map_err(|e| match e.chain().count() {
        1 => e.to_string(),
        _ => format!("{e}: {}", e.root_cause()),
    })
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<NodeReading> {
    let url = format!("{}/metrics", url.trim_end_matches('/'));
    let response = client.get(&url).send().await.context("GET /metrics")?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET /metrics: {status}");
    let text = response.text().await.context("GET /metrics: reading the answer")?;
    let at = Instant::now();
    let exposition = Exposition::parse(&text).context("GET /metrics: not a Prometheus exposition")?;
    Ok(NodeReading::new(&exposition, at))
}

/// `--interval`: positive seconds, fractions allowed.
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds >= 0.05) {
        return Err(format!("{text}: the interval must be at least 0.05 s"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_positive_seconds() {
        assert_eq!(seconds("1"), Ok(Duration::from_secs(1)));
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_failed_scrape_keeps_the_reading_before_it() {
        let reading = |hosted_shards: usize| NodeReading {
            at: Instant::now(),
            totals: reading::NodeTotals { hosted_shards, ..Default::default() },
            ispbs: Default::default(),
        };
        let previous = vec![Some(reading(1)), Some(reading(2)), None];
        let current = vec![Ok(reading(10)), Err("down".to_owned()), Err("down".to_owned())];
        let kept: Vec<Option<usize>> =
            keep_good(previous, current).iter().map(|r| r.as_ref().map(|r| r.totals.hosted_shards)).collect();
        assert_eq!(kept, vec![Some(10), Some(2), None]);
    }
}
