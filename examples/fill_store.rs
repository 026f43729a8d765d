//! Fills a node's data dir with stored messages through the real state machine, to
//! measure a cold start (SPEC.md §8: a node holding 10 million stored messages is
//! ready in under 10 s). It applies `Append` commands of 1,000 messages, shard by
//! shard as the embedded node places ISPBs, straight into the store — what the
//! node's Raft groups would have applied — then flushes it and prints each column
//! family's bytes per message (docs/storage.md); start the node on the same data
//! dir and time `/readyz`.
//!
//! Run: `cargo run --example fill_store -- DATA_DIR TENANTS MESSAGES_PER_TENANT BYTES`
//! (docs/benchmarks.md, "Cold start", gives the measured run).

use bytes::Bytes;
use rand::SeedableRng;
use rocksdb::WriteBatch;
use storage::audit::Origin;
use storage::{Command, CommandResult, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings, shard_of};

/// Shards of the embedded default (`[cluster] shards`).
const SHARDS: u32 = 16;
/// Messages per `Append` command.
const PER_COMMAND: usize = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, tenants, per_tenant, bytes] = args.as_slice() else {
        return Err("usage: fill_store DATA_DIR TENANTS MESSAGES_PER_TENANT BYTES".into());
    };
    let (tenants, per_tenant, bytes): (u32, usize, usize) = (tenants.parse()?, per_tenant.parse()?, bytes.parse()?);
    let store =
        Store::open(&std::path::Path::new(dir).join("db"), StoreOptions { fsync: false, ..StoreOptions::default() })?;
    let mut machines: Vec<ShardMachine> =
        (0..SHARDS).map(|shard| ShardMachine::load(store.clone(), shard, SHARDS)).collect::<Result<_, _>>()?;
    // Realistic bodies (pacs.008 padded with remittance lines): a few distinct ones,
    // so compression sees what it sees in production, not one repeated text.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Vec<Bytes> =
        (0..64).map(|_| Bytes::from(loadgen::sample::sample_of_size("32074986", bytes, &mut rng).body)).collect();
    let started = std::time::Instant::now();
    for tenant in 0..tenants {
        let ispb = Ispb::parse(&format!("C{tenant:07}")).ok_or("bad ISPB")?;
        let machine = &mut machines[shard_of(&ispb, SHARDS) as usize];
        for chunk in 0..per_tenant.div_ceil(PER_COMMAND) {
            let count = PER_COMMAND.min(per_tenant - chunk * PER_COMMAND);
            let messages = (0..count)
                .map(|i| NewMessage {
                    resource_id: format!("R{tenant}-{chunk}-{i}"),
                    dedupe_key: format!("D{chunk}-{i}"),
                    msg_type: "pacs.008.spi.1.14".into(),
                    body: bodies[(chunk * PER_COMMAND + i) % bodies.len()].clone(),
                })
                .collect();
            let command = Command::Append {
                ispb,
                now_ms: wire::clock::now_ms(),
                auto_create: Some(TenantSettings::default()),
                dedupe_window_ms: 1,
                messages,
                origin: Origin::system("fill"),
            };
            let mut batch = WriteBatch::default();
            let result = machine.apply(vec![command], &mut batch)?;
            if !matches!(result.first(), Some(CommandResult::Appended(_))) {
                return Err(format!("append refused: {result:?}").into());
            }
            store.write_relaxed(batch)?;
        }
    }
    store.flush()?;
    let total = u64::from(tenants) * per_tenant as u64;
    println!("{total} messages of {bytes} bytes for {tenants} tenants in {:.1} s", started.elapsed().as_secs_f64());
    println!("{:<10} {:>14} {:>14} {:>12}", "family", "table bytes", "blob bytes", "per message");
    for name in storage::columns::ALL {
        let cf = store.cf(name)?;
        let tables = store.db().property_int_value_cf(cf, "rocksdb.total-sst-files-size")?.unwrap_or(0);
        let blobs = store.db().property_int_value_cf(cf, "rocksdb.live-blob-file-size")?.unwrap_or(0);
        println!("{name:<10} {tables:>14} {blobs:>14} {:>12.1}", (tables + blobs) as f64 / total as f64);
    }
    Ok(())
}
