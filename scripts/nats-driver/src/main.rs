//! Drives NATS JetStream with the shape of `pixstream bench --preload`: T "ISPBs" are
//! subjects `pix.<ispb>` of one file-backed stream; each ISPB has one durable pull
//! consumer read by S concurrent fetchers (fetch up to `--batch`, 10 by default, ack
//! every message) — the
//! JetStream equivalent of S ICOM streams of one participant. It preloads N messages
//! of ~2 KB per ISPB, drains them, and prints one JSON line: messages, seconds,
//! messages/s, fetches/min, and the server's CPU over the drain per message (from
//! `/proc/<--server-pid>/stat`). Consumers are spread over several connections, as the
//! pixstream tool spreads its pullers over several HTTP clients. Every loop is
//! bounded by `--timeout`.
//!
//! usage: nats-driver [--url U] [--ispbs T] [--streams S] [--preload N]
//!                    [--message-bytes B] [--connections C] [--timeout SECS]
//!                    [--batch K] [--server-pid PID]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures::StreamExt;

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    url: String,
    ispbs: usize,
    streams: usize,
    preload: usize,
    message_bytes: usize,
    connections: usize,
    timeout: Duration,
    batch: usize,
    server_pid: Option<u32>,
}

fn parse_args() -> Result<Args, Failure> {
    let mut args = Args {
        url: "nats://127.0.0.1:4222".into(),
        ispbs: 100,
        streams: 6,
        preload: 100,
        message_bytes: 2048,
        connections: 4,
        timeout: Duration::from_secs(300),
        batch: 10,
        server_pid: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--ispbs" => args.ispbs = value.parse()?,
            "--streams" => args.streams = value.parse()?,
            "--preload" => args.preload = value.parse()?,
            "--message-bytes" => args.message_bytes = value.parse()?,
            "--connections" => args.connections = value.parse::<usize>()?.max(1),
            "--timeout" => args.timeout = Duration::from_secs_f64(value.parse()?),
            "--batch" => args.batch = value.parse::<usize>()?.max(1),
            "--server-pid" => args.server_pid = Some(value.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = parse_args()?;
    let mut contexts = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        contexts.push(jetstream::new(async_nats::connect(&args.url).await?));
    }
    let stream = contexts[0]
        .get_or_create_stream(jetstream::stream::Config {
            name: "PIX".into(),
            subjects: vec!["pix.>".into()],
            ..Default::default()
        })
        .await?;
    let ispbs: Vec<String> = (0..args.ispbs).map(|i| format!("N{i:07}")).collect();
    let body = envelope(args.message_bytes);

    let started = Instant::now();
    for (n, ispb) in ispbs.iter().enumerate() {
        let js = &contexts[n % contexts.len()];
        let mut acks = Vec::with_capacity(args.preload);
        for _ in 0..args.preload {
            acks.push(js.publish(format!("pix.{ispb}"), body.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    let preload_secs = started.elapsed().as_secs_f64();

    let mut consumers = Vec::with_capacity(ispbs.len());
    for ispb in &ispbs {
        let config = pull::Config {
            durable_name: Some(format!("c{ispb}")),
            filter_subject: format!("pix.{ispb}"),
            ..Default::default()
        };
        consumers.push(stream.create_consumer(config).await?);
    }
    // The consumers were created on the first connection; fetch over all of them.
    let mut bound = Vec::with_capacity(consumers.len());
    for (n, ispb) in ispbs.iter().enumerate() {
        let js = &contexts[n % contexts.len()];
        let consumer: jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream(format!("c{ispb}"), "PIX").await?;
        bound.push(consumer);
    }
    drop(consumers);

    let total = (args.ispbs * args.preload) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let fetches = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + args.timeout;
    let cpu_start = args.server_pid.and_then(cpu_of);
    let drain_started = Instant::now();
    let batch = args.batch;
    let mut tasks = Vec::new();
    for consumer in bound {
        let consumer = Arc::new(consumer);
        for _ in 0..args.streams {
            let (consumer, received, fetches) = (consumer.clone(), received.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
                    let batch = consumer.fetch().max_messages(batch).expires(Duration::from_secs(1)).messages().await;
                    let Ok(mut batch) = batch else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    fetches.fetch_add(1, Ordering::Relaxed);
                    while let Some(message) = batch.next().await {
                        let Ok(message) = message else {
                            break;
                        };
                        if message.ack().await.is_ok() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await?;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let server_cpu = match (cpu_start, args.server_pid.and_then(cpu_of)) {
        (Some(start), Some(end)) => Some(end - start),
        _ => None,
    };
    let received = received.load(Ordering::Relaxed);
    let fetches = fetches.load(Ordering::Relaxed);
    let report = serde_json::json!({
        "system": "nats-jetstream",
        "messages": received,
        "expected": total,
        "preload_secs": round2(preload_secs),
        "drain_secs": round2(drain_secs),
        "messages_per_sec": round2(received as f64 / drain_secs),
        "fetches_per_min": round2(fetches as f64 / drain_secs * 60.0),
        "server_cpu_secs": server_cpu.map(round2),
        "server_us_per_message": server_cpu.map(|cpu| round2(cpu * 1e6 / received.max(1) as f64)),
        "server_cores": server_cpu.map(|cpu| round2(cpu / drain_secs)),
    });
    println!("{report}");
    Ok(())
}

/// A ~`bytes`-byte XML body, like the pixstream tool's padded pacs.008.
fn envelope(bytes: usize) -> Bytes {
    let mut body = b"<Envelope>".to_vec();
    body.resize(bytes.saturating_sub(11).max(body.len()), b'x');
    body.extend_from_slice(b"</Envelope>");
    Bytes::from(body)
}

/// utime + stime of process `pid`, in seconds (USER_HZ is 100 on Linux).
fn cpu_of(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
