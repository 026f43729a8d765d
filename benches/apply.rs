//! Cost of `ShardMachine::apply`, the step every committed Raft entry goes through
//! (DESIGN.md §2), on a real RocksDB store in a temporary directory:
//! - `append_10x2k`: one `Append` of 10 new ~2 KB pacs.008 messages to one ISPB (the
//!   producer path, `POST /internal/v1/out/{ispb}/msgs` with a 10-part body): dedupe
//!   look-ups, message and dedupe records, tenant record. Throughput: messages.
//! - `pull_100_streams`: one group-committed batch of 100 `Pull` commands, one per ISPB
//!   over 100 ISPBs with one open stream each; every pull confirms its outstanding 10
//!   seqs and is handed the next 10 (the PSP pull path, `GET …/stream/{token}`).
//!   Throughput: pulls.
//!
//! Each is measured as `apply_write` (apply, then `Store::write_relaxed` of the
//! `WriteBatch`, as `raft::state_machine` does) and as `apply_only` (the batch is built
//! and dropped), which splits the cost between the state machine and RocksDB. Commands
//! are built outside the timed section, and every result is checked afterwards, so a
//! rejection (back-pressure, stale cursor) fails the bench instead of being measured.
//!
//! Preparation of the pull benchmark: `Pull` never reads message bodies, only seqs, and
//! each timed batch consumes 1,000 seqs. Appending real messages to feed criterion's
//! tens of thousands of iterations would write gigabytes, so each tenant record is
//! written once with `TenantState::new` and `next_seq` 2^40 ahead (encoded with the
//! crate's own `storage::db::encode`); the streams are then opened with real
//! `OpenStream` commands. The pull path runs on exactly the state it would in
//! production, minus the bodies in the messages column family, which it never touches.
//!
//! Run: `cargo bench --bench apply`

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loadgen::sample::sample_of_size;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rocksdb::WriteBatch;
use storage::{
    Command, CommandResult, Handout, Ispb, NewMessage, ShardMachine, Store, StoreOptions, StreamId, TenantSettings,
    TenantState, columns,
};
use tempfile::TempDir;

/// Messages per `Append` and the most seqs a pull hands out.
const BATCH: usize = 10;
/// ISPBs (one open stream each) pulled in one applied batch.
const ISPBS: usize = 100;
/// A fixed, increasing clock: the machine never reads the real one.
const T0_MS: u64 = 1_750_000_000_000;

/// A shard machine on a fresh RocksDB. The directory is the last field, so it is
/// removed only after both database handles have closed.
struct Fixture {
    machine: ShardMachine,
    store: Store,
    _dir: TempDir,
}

impl Fixture {
    fn open() -> Fixture {
        let dir = TempDir::new().expect("a temporary directory can be created");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("RocksDB opens in a fresh directory");
        let machine = ShardMachine::load(store.clone(), 0, 1).expect("an empty store loads");
        Fixture { machine, store, _dir: dir }
    }

    /// Applies commands and writes the batch (setup only).
    fn apply(&mut self, commands: Vec<Command>) -> Vec<CommandResult> {
        let mut batch = WriteBatch::default();
        let results = self.machine.apply(commands, &mut batch).expect("setup commands apply");
        self.store.write_relaxed(batch).expect("setup batch is written");
        results
    }

    /// Applies commands and, with `write`, writes their batch; returns the results
    /// and the time that took (the batch is dropped untimed without `write`).
    fn timed_apply(&mut self, commands: Vec<Command>, write: bool) -> (Vec<CommandResult>, Duration) {
        let mut batch = WriteBatch::default();
        let start = Instant::now();
        let results = self.machine.apply(commands, &mut batch).expect("bench commands apply");
        if write {
            self.store.write_relaxed(batch).expect("batch is written");
        }
        let took = start.elapsed();
        (results, took)
    }
}

fn ispb(i: usize) -> Ispb {
    Ispb::parse(&format!("{:08}", 10_000_000 + i)).expect("eight digits are an ISPB")
}

/// Settings that never push back: the bench appends far more than the default backlog.
fn unlimited() -> TenantSettings {
    TenantSettings { max_backlog: u64::MAX, ..TenantSettings::default() }
}

/// Appends of 10 distinct ~2 KB bodies under fresh ids: every message is new.
struct Appends {
    ispb: Ispb,
    bodies: Vec<(Bytes, String)>,
    next: u64,
}

impl Appends {
    fn new(ispb: Ispb) -> Appends {
        let mut rng = StdRng::seed_from_u64(3);
        let bodies = (0..BATCH)
            .map(|_| {
                let m = sample_of_size(ispb.as_str(), 2048, &mut rng);
                (Bytes::from(m.body), m.msg_def_idr.to_string())
            })
            .collect();
        Appends { ispb, bodies, next: 0 }
    }

    fn command(&mut self) -> Command {
        let messages = self
            .bodies
            .iter()
            .map(|(body, msg_type)| {
                self.next += 1;
                NewMessage {
                    resource_id: format!("R{:031}", self.next),
                    dedupe_key: format!("M00038166{:023}", self.next),
                    msg_type: msg_type.clone(),
                    body: body.clone(),
                }
            })
            .collect();
        Command::Append {
            ispb: self.ispb,
            now_ms: T0_MS + self.next,
            auto_create: None,
            dedupe_window_ms: 24 * 3600 * 1000,
            messages,
            origin: Default::default(),
        }
    }
}

fn check_appended(results: &[CommandResult]) {
    match results {
        [CommandResult::Appended(outcomes)] if outcomes.len() == BATCH && outcomes.iter().all(|o| !o.duplicate) => {}
        other => panic!("expected {BATCH} new messages appended, got {other:?}"),
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(BATCH as u64));
    for write in [true, false] {
        let mut fixture = Fixture::open();
        let ispb = ispb(0);
        fixture.apply(vec![Command::UpsertTenant {
            ispb,
            settings: unlimited(),
            now_ms: 0,
            origin: Default::default(),
        }]);
        let mut appends = Appends::new(ispb);
        let id = BenchmarkId::new("append_10x2k", if write { "apply_write" } else { "apply_only" });
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let (results, took) = fixture.timed_apply(vec![appends.command()], write);
                    timed += took;
                    check_appended(&results);
                }
                timed
            })
        });
    }
    group.finish();
}

/// 100 tenants with 2^40 seqs available and one open stream each (see the module
/// docs), as `(ispb, stream, generation)`.
fn open_streams(fixture: &mut Fixture) -> Vec<(Ispb, StreamId, u64)> {
    let tenants_cf = fixture.store.cf(columns::TENANTS).expect("the tenants family exists");
    for i in 0..ISPBS {
        let mut tenant = TenantState::new(ispb(i), unlimited());
        tenant.next_seq += 1 << 40;
        let record = storage::db::encode(&tenant);
        fixture.store.db().put_cf(tenants_cf, tenant.ispb.as_bytes(), record).expect("tenant record is written");
    }
    fixture.machine.reload().expect("the tenants load");
    let opens = (0..ISPBS)
        .map(|i| Command::OpenStream {
            ispb: ispb(i),
            now_ms: T0_MS,
            max_batch: BATCH as u32,
            auto_create: None,
            origin: Default::default(),
        })
        .collect();
    let results = fixture.apply(opens);
    (0..ISPBS)
        .zip(results)
        .map(|(i, result)| match result {
            CommandResult::Handout(Handout { stream, generation, seqs, .. }) if seqs.len() == BATCH => {
                (ispb(i), stream, generation)
            }
            other => panic!("expected a stream opened with {BATCH} seqs, got {other:?}"),
        })
        .collect()
}

fn pull(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(ISPBS as u64));
    for write in [true, false] {
        let mut fixture = Fixture::open();
        let mut streams = open_streams(&mut fixture);
        let mut now_ms = T0_MS;
        let id = BenchmarkId::new("pull_100_streams", if write { "apply_write" } else { "apply_only" });
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    now_ms += 1;
                    let commands = streams
                        .iter()
                        .map(|&(ispb, stream, generation)| Command::Pull {
                            ispb,
                            stream,
                            generation,
                            max_batch: BATCH as u32,
                            now_ms,
                            origin: Default::default(),
                        })
                        .collect();
                    let (results, took) = fixture.timed_apply(commands, write);
                    timed += took;
                    for (entry, result) in streams.iter_mut().zip(results) {
                        match result {
                            CommandResult::Handout(h) if h.fresh && h.seqs.len() == BATCH => entry.2 = h.generation,
                            other => panic!("expected a fresh batch of {BATCH}, got {other:?}"),
                        }
                    }
                }
                timed
            })
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
    targets = append, pull
}
criterion_main!(benches);
