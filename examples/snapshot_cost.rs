//! What a shard snapshot costs on a store holding many retained messages (fill it
//! with `examples/fill_store.rs` first), and what installing it costs a follower.
//!
//! For each shard holding tenants it prints: the snapshot file as the node writes it
//! (delivery state plus the ranges of messages and audit records) and the time to
//! write it, beside what a dump of every record would be (the earlier format's
//! content, deflated the same way). Then, on a hard-linked checkpoint of the store
//! standing in for a follower, it removes the newest `LAG` messages of every tenant
//! (what a follower that was down misses) and times the install of the biggest
//! shard's snapshot: finding what is missing, fetching it page by page from the
//! source store (as `raft::record_fetch` does from a peer, without the network), and
//! replacing the state.
//!
//! Run: `cargo run --release --example snapshot_cost -- DATA_DIR LAG`
//! (docs/benchmarks.md, "Snapshot cost", gives the measured run).

use std::io::Write;
use std::time::Instant;

use flate2::Compression;
use flate2::write::DeflateEncoder;
use rocksdb::WriteBatch;
use storage::snapshot::{self, RecordRange};
use storage::{Ispb, ShardMachine, Store, StoreOptions, columns, keys};

/// Shards of the embedded default (`[cluster] shards`), as `fill_store` places ISPBs.
const SHARDS: u32 = 16;
const PAGE_BYTES: usize = 4 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, lag] = args.as_slice() else {
        return Err("usage: snapshot_cost DATA_DIR LAG".into());
    };
    let lag: u64 = lag.parse()?;
    let options = || StoreOptions { fsync: false, ..StoreOptions::default() };
    let source = Store::open(&std::path::Path::new(dir).join("db"), options())?;
    let mut biggest: Option<(u32, Vec<Ispb>, Vec<u8>)> = None;
    println!("shard  tenants  snapshot_bytes  write_ms  all_records_bytes  all_records_ms");
    for shard in 0..SHARDS {
        let machine = ShardMachine::load(source.clone(), shard, SHARDS)?;
        let ispbs: Vec<Ispb> = machine.records().map(|t| t.ispb).collect();
        if ispbs.is_empty() {
            continue;
        }
        let started = Instant::now();
        let mut file = Vec::new();
        snapshot::export_shard(&source, &ispbs, || {}, &mut file)?;
        let write_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let all = all_records_deflated(&source, &ispbs)?;
        let all_ms = started.elapsed().as_secs_f64() * 1e3;
        println!("{shard:>5}  {:>7}  {:>14}  {write_ms:>8.1}  {all:>17}  {all_ms:>14.0}", ispbs.len(), file.len());
        if biggest.as_ref().is_none_or(|(_, b, _)| b.len() < ispbs.len()) {
            biggest = Some((shard, ispbs, file));
        }
    }
    let Some((shard, ispbs, file)) = biggest else { return Err("the store holds no tenant".into()) };

    let replica_dir = std::path::Path::new(dir).with_extension("replica");
    if replica_dir.exists() {
        std::fs::remove_dir_all(&replica_dir)?;
    }
    source.checkpoint(&replica_dir)?;
    let replica = Store::open(&replica_dir, options())?;
    let mut batch = WriteBatch::default();
    let messages = replica.cf(columns::MESSAGES)?;
    for ispb in &ispbs {
        let next = ShardMachine::load(replica.clone(), shard, SHARDS)?.record(ispb).map_or(1, |t| t.next_seq);
        let from = next.saturating_sub(lag).max(1);
        batch.delete_range_cf(messages, keys::message_key(ispb, from), keys::message_key(ispb, next));
    }
    replica.write_durable(batch)?;
    let mut machine = ShardMachine::load(replica.clone(), shard, SHARDS)?;

    let started = Instant::now();
    let ranges = snapshot::read_ranges(&mut file.as_slice())?;
    let mut wanted: Vec<RecordRange> = Vec::new();
    for range in &ranges {
        wanted.extend(snapshot::missing(&replica, range)?);
    }
    let found_ms = started.elapsed().as_secs_f64() * 1e3;
    let (mut records, mut bytes) = (0u64, 0u64);
    for part in &wanted {
        let mut next = Some(part.first);
        while let Some(first) = next {
            let page_range = RecordRange { first, ..*part };
            let page = snapshot::read_page(&source, &page_range, PAGE_BYTES)?;
            records += page.records.len() as u64;
            bytes += page.records.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
            snapshot::write_page(&replica, &page_range, &page)?;
            next = page.next;
        }
    }
    let fetched_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut batch = WriteBatch::default();
    machine.install_snapshot(&mut file.as_slice(), &ranges, &mut batch)?;
    replica.write_durable(batch)?;
    machine.reload()?;
    let total_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "install of shard {shard} ({} tenants) on a follower missing the newest {lag} messages of each: \
         missing found in {found_ms:.1} ms, {records} records ({bytes} bytes) fetched by {fetched_ms:.0} ms, \
         installed by {total_ms:.0} ms",
        ispbs.len()
    );
    drop((machine, replica));
    std::fs::remove_dir_all(&replica_dir)?;
    Ok(())
}

/// The deflated size of every state record of `ispbs` (what a snapshot holding
/// messages and audit records would carry).
fn all_records_deflated(store: &Store, ispbs: &[Ispb]) -> Result<u64, Box<dyn std::error::Error>> {
    let mut out = DeflateEncoder::new(Counter(0), Compression::fast());
    for ispb in ispbs {
        for name in columns::STATE {
            for item in store.db().prefix_iterator_cf(store.cf(name)?, ispb.as_bytes()) {
                let (key, value) = item?;
                if !key.starts_with(ispb.as_bytes()) {
                    break;
                }
                for field in [&key, &value] {
                    out.write_all(&(field.len() as u32).to_be_bytes())?;
                    out.write_all(field)?;
                }
            }
        }
    }
    Ok(out.finish()?.0)
}

/// A writer that only counts.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
