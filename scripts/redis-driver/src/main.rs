//! Drives Redis Streams with the shapes of `pixstream bench`: T "ISPBs" are streams
//! `pix:<ispb>`, each with one consumer group read by S consumers — the Redis
//! equivalent of S ICOM streams of one participant (`XREADGROUP … COUNT k` then
//! `XACK` of what was read, one connection per consumer).
//!
//! Shapes:
//! - `single` / `batch`: preload N messages of ~B bytes per ISPB, then drain them
//!   with `COUNT 1` / `COUNT 10`; the window is the drain.
//! - `live`: P producers `XADD` single messages at R per second in total, spread over
//!   the ISPBs, while the consumers block (`BLOCK 5000`); after `--warmup` seconds the
//!   window runs `--duration` seconds; end-to-end latency is `XADD` sent → read by a
//!   consumer (one process, one clock), for messages sent inside the window.
//!
//! Prints one JSON line: messages and reads of the window, its seconds, messages/s,
//! reads/min, the server's CPU over the window (from `/proc/<--server-pid>/stat`) per
//! message and in cores, the driver's own, and in `live` the end-to-end p50/p99.
//! Every loop is bounded by `--timeout`.
//!
//! usage: redis-driver --shape single|batch|live [--url U] [--ispbs T] [--streams S]
//!                     [--preload N] [--rate R] [--producers P] [--duration SECS]
//!                     [--warmup SECS] [--message-bytes B] [--server-pid PID]
//!                     [--timeout SECS]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;
use redis::{Value, cmd};
use tokio::sync::Mutex;

type Failure = Box<dyn std::error::Error + Send + Sync>;

const GROUP: &str = "g";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    Batch,
    Live,
}

struct Args {
    url: String,
    shape: Shape,
    ispbs: usize,
    streams: usize,
    preload: usize,
    rate: u64,
    producers: usize,
    duration: f64,
    warmup: f64,
    message_bytes: usize,
    server_pid: Option<u32>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, Failure> {
    let mut args = Args {
        url: "redis://127.0.0.1:6379".into(),
        shape: Shape::Batch,
        ispbs: 1000,
        streams: 6,
        preload: 100,
        rate: 2500,
        producers: 256,
        duration: 20.0,
        warmup: 5.0,
        message_bytes: 2048,
        server_pid: None,
        timeout: Duration::from_secs(300),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--shape" => {
                args.shape = match value.as_str() {
                    "single" => Shape::Single,
                    "batch" => Shape::Batch,
                    "live" => Shape::Live,
                    other => return Err(format!("unknown shape {other}").into()),
                }
            }
            "--ispbs" => args.ispbs = value.parse()?,
            "--streams" => args.streams = value.parse()?,
            "--preload" => args.preload = value.parse()?,
            "--rate" => args.rate = value.parse()?,
            "--producers" => args.producers = value.parse::<usize>()?.max(1),
            "--duration" => args.duration = value.parse()?,
            "--warmup" => args.warmup = value.parse()?,
            "--message-bytes" => args.message_bytes = value.parse()?,
            "--server-pid" => args.server_pid = Some(value.parse()?),
            "--timeout" => args.timeout = Duration::from_secs_f64(value.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if args.ispbs == 0 || args.streams == 0 {
        return Err("--ispbs and --streams must be at least 1".into());
    }
    Ok(args)
}

/// What every task of a run shares.
struct Run {
    epoch: Instant,
    /// Messages first read inside the window, and reads made inside it.
    messages: AtomicU64,
    reads: AtomicU64,
    /// Messages read at all (the drain's stop condition), and sent by live producers.
    received: AtomicU64,
    produced: AtomicU64,
    /// Window bounds, µs since `epoch` (live: messages sent inside it are measured).
    window_from_us: AtomicU64,
    window_until_us: AtomicU64,
    stop: AtomicBool,
    end_to_end: Mutex<Histogram<u64>>,
}

impl Run {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn in_window(&self, at_us: u64) -> bool {
        at_us >= self.window_from_us.load(Ordering::Relaxed) && at_us < self.window_until_us.load(Ordering::Relaxed)
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Arc::new(parse_args()?);
    let client = redis::Client::open(args.url.as_str())?;
    let mut admin = client.get_multiplexed_async_connection().await?;
    let ispbs: Vec<String> = (0..args.ispbs).map(|i| format!("pix:R{i:07}")).collect();
    // The driver's own keys, emptied first: a run reads only what it wrote.
    for key in &ispbs {
        let _: Value = cmd("DEL").arg(key).query_async(&mut admin).await?;
        let _: Value = cmd("XGROUP").arg("CREATE").arg(key).arg(GROUP).arg("0").arg("MKSTREAM").query_async(&mut admin).await?;
    }
    let run = Arc::new(Run {
        epoch: Instant::now(),
        messages: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        received: AtomicU64::new(0),
        produced: AtomicU64::new(0),
        window_from_us: AtomicU64::new(u64::MAX),
        window_until_us: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
        end_to_end: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let body = envelope(args.message_bytes);
    let deadline = Instant::now() + args.timeout;

    let mut preload_secs = None;
    let expected = if args.shape == Shape::Live {
        None
    } else {
        let started = Instant::now();
        for key in &ispbs {
            let mut pipe = redis::pipe();
            for _ in 0..args.preload {
                pipe.cmd("XADD").arg(key).arg("*").arg("t").arg(0u64).arg("b").arg(&body[..]).ignore();
            }
            let _: () = pipe.query_async(&mut admin).await?;
        }
        preload_secs = Some(started.elapsed().as_secs_f64());
        Some((args.ispbs * args.preload) as u64)
    };

    let count = if args.shape == Shape::Single { 1 } else { 10 };
    let mut connections = Vec::with_capacity(ispbs.len() * args.streams);
    for _ in 0..ispbs.len() * args.streams {
        connections.push(client.get_multiplexed_async_connection().await?);
    }
    let drain = args.shape != Shape::Live;
    let mut cpu_start = cpu_now(args.server_pid);
    let mut window_started = Instant::now();
    if drain {
        run.window_from_us.store(run.now_us(), Ordering::Relaxed);
    }
    let mut consumers = Vec::new();
    for (n, connection) in connections.into_iter().enumerate() {
        let (run, args, key) = (run.clone(), args.clone(), ispbs[n / args.streams].clone());
        let name = format!("c{}", n % args.streams);
        consumers.push(tokio::spawn(consume(connection, run, args, key, name, count, expected, deadline)));
    }

    let mut producers = Vec::new();
    if drain {
        for consumer in consumers.drain(..) {
            consumer.await??;
        }
    } else {
        let tickets = Arc::new(AtomicU64::new(0));
        let started_us = run.now_us();
        let window_from = started_us + (args.warmup * 1e6) as u64;
        run.window_from_us.store(window_from, Ordering::Relaxed);
        run.window_until_us.store(window_from + (args.duration * 1e6) as u64, Ordering::Relaxed);
        let connections = 8.min(args.producers);
        let mut shared = Vec::with_capacity(connections);
        for _ in 0..connections {
            shared.push(client.get_multiplexed_async_connection().await?);
        }
        for producer in 0..args.producers {
            let connection = shared[producer % connections].clone();
            let (run, args, keys, tickets, body) = (run.clone(), args.clone(), ispbs.clone(), tickets.clone(), body.clone());
            producers.push(tokio::spawn(produce(connection, run, args, keys, tickets, body, started_us)));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        cpu_start = cpu_now(args.server_pid);
        window_started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    }
    let cpu_end = cpu_now(args.server_pid);
    let secs = window_started.elapsed().as_secs_f64();
    run.window_until_us.store(run.now_us().min(run.window_until_us.load(Ordering::Relaxed)), Ordering::Relaxed);
    for task in producers {
        task.await??;
    }
    // What was sent inside the window is read before the consumers stop (bounded).
    let drain_until = Instant::now() + Duration::from_secs(10);
    while run.received.load(Ordering::Relaxed) < run.produced.load(Ordering::Relaxed) && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.stop.store(true, Ordering::Relaxed);
    for task in consumers {
        task.await??;
    }

    let messages = run.messages.load(Ordering::Relaxed);
    let reads = run.reads.load(Ordering::Relaxed);
    let per_message = |cpu: f64| if messages == 0 { 0.0 } else { cpu * 1e6 / messages as f64 };
    let server_cpu = match (cpu_start.server, cpu_end.server) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let driver_cpu = cpu_end.own - cpu_start.own;
    let histogram = run.end_to_end.lock().await;
    let quantile = |q: f64| if histogram.is_empty() { 0.0 } else { histogram.value_at_quantile(q) as f64 / 1000.0 };
    let report = serde_json::json!({
        "system": "redis-streams",
        "shape": match args.shape { Shape::Single => "single", Shape::Batch => "batch", Shape::Live => "live" },
        "messages": messages,
        "expected": expected,
        "reads": reads,
        "preload_secs": preload_secs.map(round2),
        "secs": round2(secs),
        "messages_per_sec": round2(messages as f64 / secs),
        "reads_per_min": round2(reads as f64 / secs * 60.0),
        "server_cpu_secs": server_cpu.map(round2),
        "server_us_per_message": server_cpu.map(|cpu| round2(per_message(cpu))),
        "server_cores": server_cpu.map(|cpu| round2(cpu / secs)),
        "driver_us_per_message": round2(per_message(driver_cpu)),
        "driver_cores": round2(driver_cpu / secs),
        "end_to_end_p50_ms": round2(quantile(0.5)),
        "end_to_end_p99_ms": round2(quantile(0.99)),
    });
    println!("{report}");
    Ok(())
}

/// One consumer: read up to `count`, acknowledge what was read, until the drain is
/// done (`expected` read in all), the live run stops, or the deadline.
#[allow(clippy::too_many_arguments)]
async fn consume(
    mut connection: MultiplexedConnection,
    run: Arc<Run>,
    args: Arc<Args>,
    key: String,
    name: String,
    count: usize,
    expected: Option<u64>,
    deadline: Instant,
) -> Result<(), Failure> {
    let block_ms = if args.shape == Shape::Live { 1000 } else { 100 };
    loop {
        let drained = expected.is_some_and(|total| run.received.load(Ordering::Relaxed) >= total);
        if drained || run.stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Ok(());
        }
        let reply: Value = cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&name)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut connection)
            .await?;
        let read_at = run.now_us();
        let entries = entries_of(reply);
        if entries.is_empty() {
            continue;
        }
        let mut ack = cmd("XACK");
        ack.arg(&key).arg(GROUP);
        let mut measured = 0u64;
        let mut latencies = Vec::new();
        for (id, sent_us) in &entries {
            ack.arg(id);
            let in_window = match args.shape {
                Shape::Live => run.in_window(*sent_us),
                _ => run.in_window(read_at),
            };
            if in_window {
                measured += 1;
                if args.shape == Shape::Live {
                    latencies.push(read_at.saturating_sub(*sent_us).max(1));
                }
            }
        }
        let _: Value = ack.query_async(&mut connection).await?;
        run.received.fetch_add(entries.len() as u64, Ordering::Relaxed);
        if run.in_window(read_at) {
            run.reads.fetch_add(1, Ordering::Relaxed);
        }
        run.messages.fetch_add(measured, Ordering::Relaxed);
        if !latencies.is_empty() {
            let mut histogram = run.end_to_end.lock().await;
            for latency in latencies {
                histogram.saturating_record(latency);
            }
        }
    }
}

/// One producer of the live shape: takes the next ticket, waits until it is due
/// (ticket / rate after the start), adds one message to the ticket's ISPB.
async fn produce(
    mut connection: MultiplexedConnection,
    run: Arc<Run>,
    args: Arc<Args>,
    keys: Vec<String>,
    tickets: Arc<AtomicU64>,
    body: Vec<u8>,
    started_us: u64,
) -> Result<(), Failure> {
    let until_us = run.window_until_us.load(Ordering::Relaxed);
    loop {
        let ticket = tickets.fetch_add(1, Ordering::Relaxed);
        let due_us = started_us + ticket * 1_000_000 / args.rate.max(1);
        if due_us >= until_us || run.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = run.now_us();
        if due_us > now {
            tokio::time::sleep(Duration::from_micros(due_us - now)).await;
        }
        let key = &keys[(ticket % keys.len() as u64) as usize];
        let sent_us = run.now_us();
        let _: Value =
            cmd("XADD").arg(key).arg("*").arg("t").arg(sent_us).arg("b").arg(&body[..]).query_async(&mut connection).await?;
        run.produced.fetch_add(1, Ordering::Relaxed);
    }
}

/// The entries of an `XREADGROUP` reply: id and the `t` field (µs since the epoch).
fn entries_of(reply: Value) -> Vec<(Vec<u8>, u64)> {
    let mut entries = Vec::new();
    let Value::Array(streams) = reply else { return entries };
    for stream in streams {
        let Value::Array(mut pair) = stream else { continue };
        let Some(Value::Array(items)) = pair.pop() else { continue };
        for item in items {
            let Value::Array(mut fields) = item else { continue };
            let values = fields.pop();
            let Some(Value::BulkString(id)) = fields.pop() else { continue };
            let mut sent_us = 0;
            if let Some(Value::Array(values)) = values {
                let mut values = values.into_iter();
                while let (Some(name), Some(value)) = (values.next(), values.next()) {
                    if let (Value::BulkString(name), Value::BulkString(value)) = (name, value)
                        && name == b"t"
                    {
                        sent_us = std::str::from_utf8(&value).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
                    }
                }
            }
            entries.push((id, sent_us));
        }
    }
    entries
}

/// CPU seconds so far: the server's (when its pid is known) and this process's.
struct Cpu {
    server: Option<f64>,
    own: f64,
}

fn cpu_now(server_pid: Option<u32>) -> Cpu {
    Cpu { server: server_pid.and_then(|pid| cpu_of(&format!("/proc/{pid}/stat"))), own: cpu_of("/proc/self/stat").unwrap_or(0.0) }
}

/// utime + stime of a `/proc/<pid>/stat`, in seconds (USER_HZ is 100 on Linux).
fn cpu_of(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A ~`bytes`-byte XML body, like the pixstream tool's padded pacs.008.
fn envelope(bytes: usize) -> Vec<u8> {
    let mut body = b"<Envelope>".to_vec();
    body.resize(bytes.saturating_sub(11).max(body.len()), b'x');
    body.extend_from_slice(b"</Envelope>");
    body
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
