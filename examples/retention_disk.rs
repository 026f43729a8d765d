//! Disk use under steady traffic with a short retention, on a real RocksDB store,
//! with time carried in the commands as the Raft log carries it (SPEC.md §4): each
//! simulated minute appends `RATE` messages a second of `BYTES` bytes over
//! `TENANTS` tenants, a PSP stream per tenant confirms them, and the retention
//! purger's pass runs every 30 simulated seconds (`retention::purge_point`, then
//! `PurgeRetained`). After every minute it prints the bytes of the store's files.
//! With a 1-minute retention the curve must stay flat after the first minutes:
//! range deletes plus compaction give the space back.
//!
//! Run: `cargo run --example retention_disk -- DIR MINUTES` (docs/benchmarks.md,
//! "Disk use under retention", gives the measured run).

use std::path::Path;

use bytes::Bytes;
use rocksdb::WriteBatch;
use storage::audit::Origin;
use storage::{Command, CommandResult, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings};

const TENANTS: u32 = 100;
const RATE: u64 = 1_000;
const BYTES: usize = 2_048;
const RETENTION_SECS: u64 = 60;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, minutes] = args.as_slice() else { return Err("usage: retention_disk DIR MINUTES".into()) };
    let minutes: u64 = minutes.parse()?;
    let store = Store::open(Path::new(dir), StoreOptions { fsync: false, ..StoreOptions::default() })?;
    let mut machine = ShardMachine::load(store.clone(), 0, 1)?;
    let ispbs: Vec<Ispb> =
        (0..TENANTS).map(|t| Ispb::parse(&format!("D{t:07}")).ok_or("bad ISPB")).collect::<Result<_, _>>()?;
    let settings = TenantSettings { retention_secs: RETENTION_SECS, ..TenantSettings::default() };
    let body = Bytes::from(format!("<Envelope>{}</Envelope>", "0123456789abcdef".repeat(BYTES / 16)));
    let mut streams = vec![None; ispbs.len()];
    let apply = |machine: &mut ShardMachine, command: Command| -> Result<CommandResult, Box<dyn std::error::Error>> {
        let mut batch = WriteBatch::default();
        let result = machine.apply(vec![command], &mut batch)?.remove(0);
        store.write_relaxed(batch)?;
        Ok(result)
    };
    println!("minute  stored_bytes  messages_kept");
    let start_ms = 1_000_000;
    for second in 0..minutes * 60 {
        let now = start_ms + second * 1_000;
        for (i, ispb) in ispbs.iter().enumerate() {
            let count = RATE / u64::from(TENANTS);
            let messages = (0..count)
                .map(|n| NewMessage {
                    resource_id: format!("R{second}-{n}"),
                    dedupe_key: format!("D{second}-{n}"),
                    msg_type: "pacs.008.spi.1.14".into(),
                    body: body.clone(),
                })
                .collect();
            let append = Command::Append {
                ispb: *ispb,
                now_ms: now,
                auto_create: Some(settings.clone()),
                dedupe_window_ms: 1,
                messages,
                origin: Origin::system("load"),
            };
            apply(&mut machine, append)?;
            // The PSP's stream confirms what it was handed and takes the rest.
            let read = match streams[i] {
                None => Command::OpenStream {
                    ispb: *ispb,
                    now_ms: now,
                    max_batch: 1_000,
                    auto_create: None,
                    origin: Origin::default(),
                },
                Some((stream, generation)) => Command::Pull {
                    ispb: *ispb,
                    stream,
                    generation,
                    max_batch: 1_000,
                    now_ms: now,
                    origin: Origin::default(),
                },
            };
            let CommandResult::Handout(handout) = apply(&mut machine, read)? else { return Err("read refused".into()) };
            streams[i] = Some((handout.stream, handout.generation));
        }
        if second % 30 == 29 {
            for ispb in &ispbs {
                let tenant = machine.tenant(ispb).ok_or("tenant")?.clone();
                if let Some(below) = storage::retention::purge_point(&store, &tenant, now)? {
                    apply(&mut machine, Command::PurgeRetained { ispb: *ispb, below, now_ms: now })?;
                }
            }
        }
        if second % 60 == 59 {
            let kept: u64 = ispbs
                .iter()
                .map(|i| {
                    let t = machine.tenant(i).expect("tenant");
                    let first = storage::retention::first_stored_seq(&store, t).ok().flatten().unwrap_or(t.next_seq);
                    t.next_seq - first
                })
                .sum();
            println!("{:>6}  {:>12}  {:>13}", second / 60 + 1, dir_bytes(Path::new(dir))?, kept);
        }
    }
    Ok(())
}

/// Bytes of every file in `dir` (tables, blob files, WAL, manifests).
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
