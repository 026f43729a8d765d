//! `Store`: the RocksDB database with every column family, shared by the state
//! machines and the Raft log stores of all shards on a node.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Env, Options, WriteBatch, WriteOptions};

use crate::counters::{StoreCounters, StoreCounts};
use crate::error::{Error, Result};
use crate::message::MessageRecord;
use crate::wal_sync::{Completion, WalSyncer};
use crate::{Ispb, Seq, StoredMessage, columns, keys};

/// How the store writes.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync the write-ahead log on every synced write (production: on).
    pub fsync: bool,
    /// The rate at which flushes and compactions may write, in bytes per second (0:
    /// unbounded): a memtable flush is spread over a second or two instead of
    /// arriving at the disk in one burst that the write-ahead log's fsyncs queue
    /// behind.
    pub background_write_bytes_per_sec: u64,
}

/// The default bound of background writes: 48 MiB/s, three times what flushes need at
/// the single node's peak rate with the load tool's messages and ~1.5 times with
/// bodies that compress less, so it spreads flushes without slowing producers
/// (docs/benchmarks.md). A fixed rate on purpose: RocksDB's auto-tuned limiter drops
/// to 1/20 of its bound after ten idle seconds and climbs back 5 % per ten seconds,
/// which stalls writers when a quiet node meets a burst.
pub const DEFAULT_BACKGROUND_WRITE_BYTES_PER_SEC: u64 = 48 << 20;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { fsync: true, background_write_bytes_per_sec: DEFAULT_BACKGROUND_WRITE_BYTES_PER_SEC }
    }
}

/// A handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    options: StoreOptions,
    syncer: Arc<WalSyncer>,
    counters: Arc<StoreCounters>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` with every family.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store> {
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.increase_parallelism(2);
        db_options.set_max_background_jobs(2);
        db_options.set_enable_pipelined_write(true);
        db_options.set_env(&background_env()?);
        // Flushes and compactions hand their output to the disk as they go, so that
        // closing a 64 MB table is not one large fsync that the WAL's syncs queue behind.
        db_options.set_bytes_per_sync(BACKGROUND_SYNC_BYTES);
        // The families share one WAL, and a WAL file goes only when every family
        // with data in it has flushed; the small, constantly rewritten families
        // (tenants, streams, Raft metadata) would otherwise keep every WAL file since
        // their last flush — gigabytes under steady traffic. Past this total the
        // families holding the oldest file are flushed.
        db_options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        if let Ok(limit @ 1..) = i64::try_from(options.background_write_bytes_per_sec) {
            db_options.set_ratelimiter(limit, RATE_LIMIT_REFILL_MICROS, RATE_LIMIT_FAIRNESS);
        }
        let families = columns::ALL.iter().map(|name| {
            let mut cf_options = Options::default();
            if *name == columns::MESSAGES || *name == columns::RAFT_LOG {
                cf_options.set_compression_type(DBCompressionType::Lz4);
                separate_large_values(&mut cf_options);
                cf_options.set_max_write_buffer_number(LARGE_FAMILY_MEMTABLES);
            }
            ColumnFamilyDescriptor::new(*name, cf_options)
        });
        let db = DB::open_cf_descriptors(&db_options, path, families)?;
        let db = Arc::new(db);
        let counters = Arc::new(StoreCounters::default());
        let syncer = Arc::new(WalSyncer::start(db.clone(), counters.clone())?);
        Ok(Store { db, options, syncer, counters })
    }

    /// The raw database, for the Raft log store.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A column family handle.
    pub fn cf(&self, name: &'static str) -> Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or(Error::MissingColumnFamily(name))
    }

    /// Writes a consistent checkpoint of every family into `dir` (which must not
    /// exist): memtables are flushed first, SST and blob files are hard-linked when
    /// `dir` is on the same file system (copied otherwise). The checkpoint opens as
    /// a store of its own (`Store::open`), at one instant of this one.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Writes a batch durably (fsync when the store is configured for it).
    pub fn write_durable(&self, batch: WriteBatch) -> Result<()> {
        self.write(batch, self.options.fsync)
    }

    /// Writes a batch without waiting for fsync: for state that the durable Raft log
    /// can rebuild (the state machine is re-applied from the log after a crash).
    pub fn write_relaxed(&self, batch: WriteBatch) -> Result<()> {
        self.write(batch, false)
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.counters.wrote(batch.len(), batch.size_in_bytes());
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options)?;
        if sync {
            self.counters.synced();
        }
        Ok(())
    }

    /// What the store has written, synced and read since it opened.
    pub fn counts(&self) -> StoreCounts {
        self.counters.counts()
    }

    /// Counts `count` stored messages read outside `read_messages` (the state
    /// machine's audit resource ids).
    pub(crate) fn count_message_reads(&self, count: usize) {
        self.counters.read_messages(count);
    }

    /// Writes a batch at once and runs `done` when it is durable: after the node's
    /// next shared fsync (`wal_sync`), or right away when fsync is off. For the Raft
    /// log, whose appends report durability through a callback.
    pub fn write_then_sync(&self, batch: WriteBatch, done: Completion) -> Result<()> {
        self.write_relaxed(batch)?;
        if self.options.fsync {
            self.syncer.after_sync(done);
        } else {
            done(Ok(()));
        }
        Ok(())
    }

    /// Fault injection (a slow disk): from now on every shared fsync of the
    /// write-ahead log (`write_then_sync`, the Raft log's appends) first waits
    /// `delay`; `Duration::ZERO`, the default, turns it off. Nothing is lost or
    /// reordered, writes only become durable later. For failure-domain tests and
    /// drills; no effect when fsync is off.
    pub fn inject_sync_delay(&self, delay: Duration) {
        self.syncer.set_delay(delay);
    }

    /// Reads messages of one ISPB by seq, in the order asked. A seq that is not
    /// stored (purged) is left out.
    pub fn read_messages(&self, ispb: &Ispb, seqs: &[Seq]) -> Result<Vec<StoredMessage>> {
        let cf = self.cf(columns::MESSAGES)?;
        let keys: Vec<_> = seqs.iter().map(|seq| (cf, keys::message_key(ispb, *seq))).collect();
        self.counters.read_messages(keys.len());
        let mut out = Vec::with_capacity(seqs.len());
        for (seq, value) in seqs.iter().zip(self.db.multi_get_cf(keys)) {
            if let Some(bytes) = value? {
                let record: MessageRecord = decode(columns::MESSAGES, &bytes)?;
                out.push(record.into_stored(*seq));
            }
        }
        Ok(out)
    }

    /// When the message `seq` of `ispb` was enqueued, if it is stored.
    pub fn enqueued_at(&self, ispb: &Ispb, seq: Seq) -> Result<Option<u64>> {
        Ok(self.read_messages(ispb, &[seq])?.pop().map(|m| m.enqueued_at_ms))
    }

    /// How long the oldest unconfirmed message of an ISPB — the one at its
    /// `watermark` — has waited at `now_ms`; 0 when its `backlog` is empty.
    pub fn oldest_unconfirmed_age_ms(&self, ispb: &Ispb, watermark: Seq, backlog: u64, now_ms: u64) -> u64 {
        if backlog == 0 {
            return 0;
        }
        self.enqueued_at(ispb, watermark).ok().flatten().map_or(0, |at| now_ms.saturating_sub(at))
    }

    /// Reads one value.
    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    /// Flushes memtables and the WAL (used on shutdown).
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        for name in columns::ALL {
            self.db.flush_cf(self.cf(name)?)?;
        }
        Ok(())
    }
}

/// WAL bytes kept before the families pinning the oldest WAL file are flushed: the
/// size of the messages family's memtables (4 × 64 MB), far below a day of traffic.
const MAX_TOTAL_WAL_BYTES: u64 = 256 << 20;

/// How much a flush or compaction writes before it asks the kernel to start writing
/// the file out (`sync_file_range`).
const BACKGROUND_SYNC_BYTES: u64 = 1 << 20;

/// The rate limiter hands out write budget every 10 ms (RocksDB's default of 100 ms
/// lets a tenth of a second's budget, ~5 MB, through at once, which the next fsync
/// waits behind); flushes (high priority) are served ahead of compactions except one
/// time in ten.
const RATE_LIMIT_REFILL_MICROS: i64 = 10_000;
const RATE_LIMIT_FAIRNESS: i32 = 10;

/// Memtables a large family may hold (one filling, the rest waiting for or in a
/// flush). A flush slowed by the background write bound then never stops writers:
/// up to 4 × 64 MB of bodies wait in memory instead.
const LARGE_FAMILY_MEMTABLES: i32 = 4;

/// Values at least this large (message bodies, Raft entries carrying appends) live in
/// blob files: compactions then move keys and small pointers instead of rewriting
/// every body again at each level.
const MIN_BLOB_BYTES: u64 = 1024;

/// Keeps the large values of a family in blob files (RocksDB's integrated BlobDB). A
/// blob file is deleted once compaction has dropped every key that points into it,
/// which is how purged Raft log entries leave the disk.
fn separate_large_values(cf_options: &mut Options) {
    cf_options.set_enable_blob_files(true);
    cf_options.set_min_blob_size(MIN_BLOB_BYTES);
    cf_options.set_blob_compression_type(DBCompressionType::Lz4);
}

/// RocksDB's background threads with compactions at the lowest CPU priority: they
/// use the cores the request path leaves idle instead of taking turns with it.
/// Flushes keep normal priority, so memtables never pile up into a write stall.
fn background_env() -> Result<Env> {
    let mut env = Env::new()?;
    env.lower_thread_pool_cpu_priority();
    Ok(env)
}

/// bincode configuration used for every stored record.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a stored record.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data structures into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode_config())
        .expect("plain records (no maps with non-string keys, no unsized sequences) always encode")
}

/// Decodes a stored record, naming the family on failure.
pub fn decode<T: serde::de::DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(bytes, bincode_config())
        .map(|(value, _)| value)
        .map_err(|e| Error::Corrupt { cf, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rocksdb::WriteBatch;

    use crate::{Command, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings};

    fn append(ispb: Ispb, bodies: &[Bytes]) -> Command {
        let messages = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| NewMessage {
                resource_id: format!("M{i}"),
                dedupe_key: format!("M{i}"),
                msg_type: "pacs.008.spi.1.14".into(),
                body: body.clone(),
            })
            .collect();
        Command::Append {
            ispb,
            now_ms: 1,
            auto_create: Some(TenantSettings::default()),
            dedupe_window_ms: 1_000,
            messages,
            origin: Default::default(),
        }
    }

    fn blob_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .expect("list")
            .filter(|e| e.as_ref().expect("entry").path().extension().is_some_and(|x| x == "blob"))
            .count()
    }

    #[test]
    fn large_bodies_live_in_blob_files_and_read_back_after_flush_and_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ispb = Ispb::parse("32074986").expect("valid");
        let bodies = vec![
            Bytes::from(vec![b'a'; 4096]),
            Bytes::from_static(b"<small/>"),
            Bytes::from((0..3000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        ];
        {
            let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
            let mut machine = ShardMachine::load(store.clone(), 0, 1).expect("load");
            let mut batch = WriteBatch::default();
            machine.apply(vec![append(ispb, &bodies)], &mut batch).expect("apply");
            store.write_durable(batch).expect("write");
            assert_eq!(blob_files(dir.path()), 0, "nothing flushed yet");
            store.flush().expect("flush");
            assert!(blob_files(dir.path()) >= 1, "the flush moved the large bodies into a blob file");
        }
        let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen");
        let read = store.read_messages(&ispb, &[1, 2, 3]).expect("read");
        let read_bodies: Vec<Bytes> = read.into_iter().map(|m| m.body).collect();
        assert_eq!(read_bodies, bodies);
    }
}
