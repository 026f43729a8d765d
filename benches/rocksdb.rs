//! RocksDB costs under pixstream's two request paths, on a real database in a temporary
//! directory (the same disk as the data directory would be):
//! - `write_append_10x2k/durable_fsync`: `Store::write_durable` on a store opened with
//!   `fsync: true` of the `WriteBatch` that `ShardMachine::apply` builds for one
//!   `Append` of 10 ~2 KB messages (10 message records, 10 dedupe records, the tenant
//!   record). One synced WAL write: the price of a durable write that is not grouped.
//! - `write_append_10x2k/relaxed`: the same batches through `Store::write_relaxed` (no
//!   fsync), how the state machine writes after a commit.
//! - `read_messages_10/flushed` and `read_messages_10/memtable`: `Store::read_messages`
//!   of 10 consecutive seqs (one `multi_get_cf` and 10 decodes), the read a pull makes
//!   when its batch is not in the tail cache: from SST files after a flush (block cache
//!   warm after the first pass) and from messages still in the memtable. Successive
//!   iterations read successive windows of 10 out of 10,000 (resp. 1,000) messages.
//!
//! The write batches are prepared by real `Append` commands outside the timed section.
//! Throughput is the batch size (writes) or the bytes of the bodies read.
//!
//! Run: `cargo bench --bench rocksdb`

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use loadgen::sample::sample_of_size;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rocksdb::WriteBatch;
use storage::{Command, CommandResult, Ispb, NewMessage, Seq, ShardMachine, Store, StoreOptions, TenantSettings};
use tempfile::TempDir;

/// Messages per `Append` and per read.
const BATCH: usize = 10;
const T0_MS: u64 = 1_750_000_000_000;

/// A shard machine on a fresh RocksDB. The directory is the last field, so it is
/// removed only after both database handles have closed.
struct Fixture {
    machine: ShardMachine,
    store: Store,
    bodies: Vec<(Bytes, String)>,
    next: u64,
    _dir: TempDir,
}

impl Fixture {
    fn open(fsync: bool, ispbs: &[Ispb]) -> Fixture {
        let dir = TempDir::new().expect("a temporary directory can be created");
        let store = Store::open(dir.path(), StoreOptions { fsync, ..StoreOptions::default() })
            .expect("RocksDB opens in a fresh directory");
        let machine = ShardMachine::load(store.clone(), 0, 1).expect("an empty store loads");
        let mut rng = StdRng::seed_from_u64(7);
        let bodies = (0..BATCH)
            .map(|_| {
                let m = sample_of_size("32074986", 2048, &mut rng);
                (Bytes::from(m.body), m.msg_def_idr.to_string())
            })
            .collect();
        let mut fixture = Fixture { machine, store, bodies, next: 0, _dir: dir };
        // Tenants that never push back: the write benches append far past the default backlog.
        let settings = TenantSettings { max_backlog: u64::MAX, ..TenantSettings::default() };
        let upserts = ispbs
            .iter()
            .map(|&ispb| Command::UpsertTenant {
                ispb,
                settings: settings.clone(),
                now_ms: 0,
                origin: Default::default(),
            })
            .collect();
        let batch = fixture.apply(upserts);
        fixture.store.write_relaxed(batch).expect("tenants are written");
        fixture
    }

    /// Applies commands and returns the batch they produced, unwritten.
    fn apply(&mut self, commands: Vec<Command>) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let results = self.machine.apply(commands, &mut batch).expect("commands apply");
        for result in results {
            match result {
                CommandResult::TenantUpserted => {}
                CommandResult::Appended(outcomes) if outcomes.iter().all(|o| !o.duplicate) => {}
                other => panic!("unexpected result while preparing: {other:?}"),
            }
        }
        batch
    }

    /// The batch of one `Append` of 10 new messages to `ispb`.
    fn append_batch(&mut self, ispb: Ispb) -> WriteBatch {
        let mut messages = Vec::with_capacity(BATCH);
        for (body, msg_type) in &self.bodies {
            self.next += 1;
            messages.push(NewMessage {
                resource_id: format!("R{:031}", self.next),
                dedupe_key: format!("M00038166{:023}", self.next),
                msg_type: msg_type.clone(),
                body: body.clone(),
            });
        }
        let append = Command::Append {
            ispb,
            now_ms: T0_MS + self.next,
            auto_create: None,
            dedupe_window_ms: 24 * 3600 * 1000,
            messages,
            origin: Default::default(),
        };
        self.apply(vec![append])
    }
}

fn ispb(text: &str) -> Ispb {
    Ispb::parse(text).expect("a valid ISPB literal")
}

fn writes(c: &mut Criterion) {
    let tenant = ispb("32074986");
    let mut group = c.benchmark_group("write_append_10x2k");
    for durable in [true, false] {
        let mut fixture = Fixture::open(true, &[tenant]);
        let size = fixture.append_batch(tenant).size_in_bytes();
        group.throughput(Throughput::Bytes(size as u64));
        if durable {
            // Each sample is milliseconds of fsync: flat sampling keeps the run short.
            group.sampling_mode(SamplingMode::Flat).sample_size(20).measurement_time(Duration::from_secs(5));
        } else {
            group.sampling_mode(SamplingMode::Auto).sample_size(30).measurement_time(Duration::from_secs(3));
        }
        let store = fixture.store.clone();
        let id = BenchmarkId::from_parameter(if durable { "durable_fsync" } else { "relaxed" });
        group.bench_function(id, |b| {
            b.iter_batched(
                || fixture.append_batch(tenant),
                |batch| {
                    if durable {
                        store.write_durable(batch).expect("batch is written");
                    } else {
                        store.write_relaxed(batch).expect("batch is written");
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Reads successive windows of 10 seqs out of `1..=total`.
struct Windows {
    total: Seq,
    next: Seq,
}

impl Windows {
    fn next(&mut self) -> Vec<Seq> {
        if self.next + BATCH as Seq - 1 > self.total {
            self.next = 1;
        }
        let seqs = (self.next..self.next + BATCH as Seq).collect();
        self.next += BATCH as Seq;
        seqs
    }
}

fn reads(c: &mut Criterion) {
    let (flushed, recent) = (ispb("32074986"), ispb("60746948"));
    let mut fixture = Fixture::open(false, &[flushed, recent]);
    let flushed_total: Seq = 10_000;
    let recent_total: Seq = 1_000;
    for _ in 0..flushed_total / BATCH as Seq {
        let batch = fixture.append_batch(flushed);
        fixture.store.write_relaxed(batch).expect("messages are written");
    }
    fixture.store.flush().expect("memtables flush");
    for _ in 0..recent_total / BATCH as Seq {
        let batch = fixture.append_batch(recent);
        fixture.store.write_relaxed(batch).expect("messages are written");
    }
    let store = fixture.store.clone();
    let body_bytes: usize = fixture.bodies.iter().map(|(body, _)| body.len()).sum();

    let mut group = c.benchmark_group("read_messages_10");
    group.sample_size(30).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(body_bytes as u64));
    for (name, ispb, total) in [("flushed", flushed, flushed_total), ("memtable", recent, recent_total)] {
        let mut windows = Windows { total, next: 1 };
        let first = store.read_messages(&ispb, &windows.next()).expect("messages read");
        assert_eq!(first.len(), BATCH, "every seq of the window is stored");
        group.bench_function(name, |b| {
            b.iter_batched(
                || windows.next(),
                |seqs| store.read_messages(&ispb, &seqs).expect("messages read"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = writes, reads
}
criterion_main!(benches);
