//! What the measured window cost: the server's CPU (its own
//! `pixstream_process_cpu_seconds_total`), this tool's CPU (`/proc/self/stat`), and
//! the operations the server counted — Raft proposals and entries, RocksDB write
//! batches, keys, bytes and fsyncs, stored messages read, long-poll wake-ups,
//! context switches and I/O system calls — read from the node's `/metrics` when the
//! window opens and when it closes, divided by the pulls answered and the messages
//! delivered in it. `--http-floor` first measures the same for `GET /healthz`, the
//! cheapest answer the node gives, so every report carries its own floor.
//!
//! The figures are of the node at `--internal-url` alone: against a cluster they are
//! one replica's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wire::paths::HEALTHZ;

/// The server's counters the report divides, by report name: the metric (and label
/// set) they are summed from.
const SERVER_COUNTERS: [(&str, &str); 14] = [
    ("cpu_seconds", "pixstream_process_cpu_seconds_total"),
    ("proposals", "pixstream_shard_proposals_total"),
    ("raft_entries", "pixstream_shard_proposal_entries_total"),
    ("write_batches", "pixstream_storage_writes_total"),
    ("written_keys", "pixstream_storage_written_keys_total"),
    ("written_bytes", "pixstream_storage_written_bytes_total"),
    ("fsyncs", "pixstream_storage_syncs_total"),
    ("message_reads", "pixstream_storage_message_reads_total"),
    ("wakes", "pixstream_long_poll_wakes_total"),
    ("wake_receivers", "pixstream_long_poll_wake_receivers_total"),
    ("voluntary_switches", r#"pixstream_process_context_switches_total{kind="voluntary"}"#),
    ("involuntary_switches", r#"pixstream_process_context_switches_total{kind="involuntary"}"#),
    ("read_syscalls", r#"pixstream_process_io_syscalls_total{kind="read"}"#),
    ("write_syscalls", r#"pixstream_process_io_syscalls_total{kind="write"}"#),
];

/// The server's counters and this tool's CPU at one moment.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// By report name; a counter the node does not expose is absent.
    server: BTreeMap<&'static str, f64>,
    tool_cpu_seconds: f64,
}

/// Reads the node's counters and this process's CPU.
pub async fn read(client: &reqwest::Client, internal_base: &str) -> Reading {
    let server = match scrape(client, internal_base).await {
        Some(text) => sum_counters(&text),
        None => BTreeMap::new(),
    };
    Reading { server, tool_cpu_seconds: own_cpu_seconds().unwrap_or(0.0) }
}

async fn scrape(client: &reqwest::Client, internal_base: &str) -> Option<String> {
    let answer = client.get(format!("{internal_base}/metrics")).send().await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    answer.text().await.ok()
}

/// Sums every sample of each of `SERVER_COUNTERS` (over shards, for instance).
fn sum_counters(exposition: &str) -> BTreeMap<&'static str, f64> {
    let mut sums = BTreeMap::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let name = series.split('{').next().unwrap_or(series);
        for (key, wanted) in SERVER_COUNTERS {
            let matches = if wanted.contains('{') { series == wanted } else { name == wanted };
            if matches {
                *sums.entry(key).or_insert(0.0) += value;
            }
        }
    }
    sums
}

/// This process's CPU time, user and system (USER_HZ is 100 on Linux).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The cost of a window: CPU per pull and per message, and the server's operations
/// per delivered message.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cost {
    /// What the figures are divided by.
    pub pulls: u64,
    pub messages: u64,
    /// Server CPU per answered pull, µs (absent when the node exposes no CPU).
    pub server_us_per_pull: Option<f64>,
    pub tool_us_per_pull: f64,
    pub server_us_per_message: Option<f64>,
    pub tool_us_per_message: f64,
    /// Server CPU over the window, seconds, and as a share of one core.
    pub server_cpu_seconds: Option<f64>,
    pub server_cores: Option<f64>,
    pub tool_cpu_seconds: f64,
    pub tool_cores: f64,
    /// Each counter of `SERVER_COUNTERS` (CPU apart) per delivered message.
    pub per_message: BTreeMap<String, f64>,
}

impl Cost {
    /// The cost of the window between `start` and `end`, `secs` long.
    pub fn between(start: &Reading, end: &Reading, secs: f64, pulls: u64, messages: u64) -> Cost {
        let delta = |key: &str| Some(end.server.get(key)? - start.server.get(key)?);
        let per = |value: f64, count: u64| if count == 0 { 0.0 } else { value / count as f64 };
        let server_cpu = delta("cpu_seconds");
        let tool_cpu = end.tool_cpu_seconds - start.tool_cpu_seconds;
        let per_message = SERVER_COUNTERS
            .iter()
            .filter(|(key, _)| *key != "cpu_seconds")
            .filter_map(|(key, _)| Some(((*key).to_owned(), per(delta(key)?, messages))))
            .collect();
        Cost {
            pulls,
            messages,
            server_us_per_pull: server_cpu.map(|cpu| per(cpu * 1e6, pulls)),
            tool_us_per_pull: per(tool_cpu * 1e6, pulls),
            server_us_per_message: server_cpu.map(|cpu| per(cpu * 1e6, messages)),
            tool_us_per_message: per(tool_cpu * 1e6, messages),
            server_cpu_seconds: server_cpu,
            server_cores: server_cpu.map(|cpu| cpu / secs.max(1e-9)),
            tool_cpu_seconds: tool_cpu,
            tool_cores: tool_cpu / secs.max(1e-9),
            per_message,
        }
    }
}

/// The HTTP floor: `GET /healthz` on the internal listener over keep-alive
/// connections, as fast as `connections` loops go, for a few seconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Floor {
    pub connections: usize,
    pub secs: f64,
    pub requests: u64,
    pub per_sec: f64,
    pub server_us_per_request: Option<f64>,
    pub tool_us_per_request: f64,
}

/// Measures the floor before the run starts.
pub async fn measure_floor(client: &reqwest::Client, internal_base: &str, secs: u64, connections: usize) -> Floor {
    let url = Arc::new(format!("{internal_base}{HEALTHZ}"));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = read(client, internal_base).await;
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, url, stop, done) = (client.clone(), url.clone(), stop.clone(), done.clone());
        loops.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(answer) = client.get(url.as_str()).send().await
                    && answer.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    while loops.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let end = read(client, internal_base).await;
    let requests = done.load(Ordering::Relaxed);
    // Two scrapes are inside the window too; at thousands of requests they do not show.
    let cost = Cost::between(&start, &end, elapsed, requests, requests);
    Floor {
        connections,
        secs: elapsed,
        requests,
        per_sec: requests as f64 / elapsed.max(1e-9),
        server_us_per_request: cost.server_us_per_pull,
        tool_us_per_request: cost.tool_us_per_pull,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP pixstream_shard_proposals Commands proposed
# TYPE pixstream_shard_proposals counter
pixstream_shard_proposals_total{shard="0"} 10
pixstream_shard_proposals_total{shard="1"} 30
pixstream_process_cpu_seconds_total 2.5
pixstream_process_context_switches_total{kind="voluntary"} 700
pixstream_process_context_switches_total{kind="involuntary"} 5
pixstream_storage_writes_total 90
"#;

    #[test]
    fn counters_are_summed_over_series_and_split_by_label_where_asked() {
        let sums = sum_counters(EXPOSITION);
        assert_eq!(sums.get("proposals"), Some(&40.0), "both shards");
        assert_eq!(sums.get("cpu_seconds"), Some(&2.5));
        assert_eq!(sums.get("voluntary_switches"), Some(&700.0));
        assert_eq!(sums.get("involuntary_switches"), Some(&5.0));
        assert_eq!(sums.get("write_batches"), Some(&90.0));
        assert_eq!(sums.get("fsyncs"), None, "not exposed, not invented");
    }

    #[test]
    fn the_cost_divides_the_window_by_pulls_and_messages() {
        let start = Reading { server: sum_counters(EXPOSITION), tool_cpu_seconds: 1.0 };
        let later =
            EXPOSITION.replace("2.5", "4.5").replace("} 30", "} 130").replace("writes_total 90", "writes_total 290");
        let end = Reading { server: sum_counters(&later), tool_cpu_seconds: 2.0 };
        let cost = Cost::between(&start, &end, 10.0, 20_000, 100);
        assert_eq!(cost.server_us_per_pull, Some(100.0), "2 s of server CPU over 20,000 pulls");
        assert_eq!(cost.tool_us_per_pull, 50.0);
        assert_eq!(cost.server_us_per_message, Some(20_000.0));
        assert_eq!(cost.server_cores, Some(0.2));
        assert_eq!(cost.per_message.get("proposals"), Some(&1.0));
        assert_eq!(cost.per_message.get("write_batches"), Some(&2.0));
        assert!(!cost.per_message.contains_key("fsyncs"));
    }

    #[test]
    fn the_tool_reads_its_own_cpu() {
        let before = own_cpu_seconds().expect("/proc/self/stat");
        let mut x = 0u64;
        let spin = Instant::now();
        while own_cpu_seconds().expect("again") <= before {
            x = x.wrapping_mul(31).wrapping_add(7);
            assert!(spin.elapsed() < Duration::from_secs(10), "10 s of spinning cost no CPU? {x}");
        }
    }
}
