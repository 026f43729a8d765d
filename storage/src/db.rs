//! `Store`: the RocksDB database with every column family, shared by the state
//! machines and the Raft log stores of all shards on a node.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options, WriteBatch, WriteOptions};

use crate::error::{Error, Result};
use crate::message::MessageRecord;
use crate::wal_sync::{Completion, WalSyncer};
use crate::{Ispb, Seq, StoredMessage, columns, keys};

/// How the store writes.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync the write-ahead log on every synced write (production: on).
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { fsync: true }
    }
}

/// A handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    options: StoreOptions,
    syncer: Arc<WalSyncer>,
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
        let families = columns::ALL.iter().map(|name| {
            let mut cf_options = Options::default();
            if *name == columns::MESSAGES || *name == columns::RAFT_LOG {
                cf_options.set_compression_type(DBCompressionType::Lz4);
            }
            ColumnFamilyDescriptor::new(*name, cf_options)
        });
        let db = DB::open_cf_descriptors(&db_options, path, families)?;
        let db = Arc::new(db);
        let syncer = Arc::new(WalSyncer::start(db.clone())?);
        Ok(Store { db, options, syncer })
    }

    /// The raw database, for the Raft log store.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A column family handle.
    pub fn cf(&self, name: &'static str) -> Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or(Error::MissingColumnFamily(name))
    }

    /// Writes a batch durably (fsync when the store is configured for it).
    pub fn write_durable(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(self.options.fsync);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    /// Writes a batch without waiting for fsync: for state that the durable Raft log
    /// can rebuild (the state machine is re-applied from the log after a crash).
    pub fn write_relaxed(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(false);
        self.db.write_opt(batch, &options)?;
        Ok(())
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

    /// Reads messages of one ISPB by seq, in the order asked. A seq that is not
    /// stored (purged) is left out.
    pub fn read_messages(&self, ispb: &Ispb, seqs: &[Seq]) -> Result<Vec<StoredMessage>> {
        let cf = self.cf(columns::MESSAGES)?;
        let keys: Vec<_> = seqs.iter().map(|seq| (cf, keys::message_key(ispb, *seq))).collect();
        let mut out = Vec::with_capacity(seqs.len());
        for (seq, value) in seqs.iter().zip(self.db.multi_get_cf(keys)) {
            if let Some(bytes) = value? {
                let record: MessageRecord = decode(columns::MESSAGES, &bytes)?;
                out.push(record.into_stored(*seq));
            }
        }
        Ok(out)
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
