//! `LogStore`: the Raft log and vote of one shard, in the node's shared RocksDB.
//!
//! Entries live in `RAFT_LOG` under `shard ‖ index` (big-endian, so a shard's log is
//! one contiguous, ordered key range); the vote and the last purged log id live in
//! `RAFT_META`. An append writes its entries at once and reports them flushed through
//! openraft's `LogFlushed` callback after the node's shared fsync
//! (`storage::wal_sync`): the Raft core never waits on the disk, and the appends of
//! every shard share one fsync. Truncations, purges and votes are rare and synced in
//! place, from the blocking pool.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};
use storage::{Store, columns, keys};

use crate::meta;
use crate::types::{LogId, TypeConfig};

/// One shard's Raft log; cheap to clone, and also its own log reader.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    shard: u32,
    /// Bytes of the entries appended since the node started (`snapshot_trigger`).
    appended_bytes: Arc<AtomicU64>,
}

impl LogStore {
    /// The log of `shard` in `store`.
    pub fn new(store: Store, shard: u32) -> LogStore {
        LogStore { store, shard, appended_bytes: Arc::new(AtomicU64::new(0)) }
    }

    /// The count of bytes appended to this log since the node started.
    pub fn appended_bytes(&self) -> Arc<AtomicU64> {
        self.appended_bytes.clone()
    }

    /// The shard whose log this is.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    fn key(&self, index: u64) -> [u8; 12] {
        keys::shard_u64_key(self.shard, index)
    }

    /// The first key after this shard's log.
    fn end_key(&self) -> Vec<u8> {
        keys::prefix_end(&self.shard.to_be_bytes())
    }

    /// Reads entries with index in `[start, end)` (`end = None`: to the last one).
    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry<TypeConfig>>, storage::Error> {
        let db = self.store.db();
        let cf = self.store.cf(columns::RAFT_LOG)?;
        let upper = match end {
            Some(end) => self.key(end).to_vec(),
            None => self.end_key(),
        };
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(upper);
        let start_key = self.key(start);
        let mut out = Vec::new();
        for item in db.iterator_cf_opt(cf, options, IteratorMode::From(&start_key, Direction::Forward)) {
            let (_, value) = item?;
            out.push(storage::db::decode(columns::RAFT_LOG, &value)?);
        }
        Ok(out)
    }

    /// Whether this shard has any persisted Raft state on this node: a vote, a log
    /// entry or a purge point. A node with none of them never took part in the group.
    pub fn has_state(&self) -> Result<bool, storage::Error> {
        let vote: Option<Vote<u64>> = meta::get(&self.store, self.shard, meta::VOTE)?;
        let purged: Option<Option<LogId>> = meta::get(&self.store, self.shard, meta::PURGED)?;
        Ok(vote.is_some() || purged.is_some() || self.last_entry_id()?.is_some())
    }

    /// The id of the last entry present, if any.
    fn last_entry_id(&self) -> Result<Option<LogId>, storage::Error> {
        let db = self.store.db();
        let cf = self.store.cf(columns::RAFT_LOG)?;
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(self.key(0).to_vec());
        let end = self.end_key();
        let mut iter = db.iterator_cf_opt(cf, options, IteratorMode::From(&end, Direction::Reverse));
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                if !key.starts_with(&self.shard.to_be_bytes()) {
                    return Ok(None);
                }
                let entry: Entry<TypeConfig> = storage::db::decode(columns::RAFT_LOG, &value)?;
                Ok(Some(entry.log_id))
            }
        }
    }

    /// Writes `batch` durably on the blocking pool.
    async fn write_durable(&self, batch: WriteBatch) -> Result<(), storage::Error> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write_durable(batch))
            .await
            .map_err(|e| storage::Error::Io(io::Error::other(e)))?
    }
}

/// `[start, end)` of a range of log indexes; `None` end means unbounded.
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let (start, end) = index_bounds(&range);
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        self.read_range(start, end).map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let purged = meta::get::<Option<LogId>>(&self.store, self.shard, meta::PURGED)
            .map_err(|e| StorageIOError::read_logs(&e))?
            .flatten();
        let last = self.last_entry_id().map_err(|e| StorageIOError::read_logs(&e))?;
        Ok(LogState { last_log_id: last.or(purged), last_purged_log_id: purged })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let mut batch = WriteBatch::default();
        meta::put(&self.store, &mut batch, self.shard, meta::VOTE, vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.write_durable(batch).await.map_err(|e| StorageIOError::write_vote(&e))?;
        tracing::debug!(shard = self.shard, %vote, "vote saved");
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        meta::get(&self.store, self.shard, meta::VOTE).map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.store.cf(columns::RAFT_LOG).map_err(|e| StorageIOError::write_logs(&e))?;
        let mut batch = WriteBatch::default();
        let mut count = 0usize;
        let mut bytes = 0usize;
        let mut last = None;
        for entry in entries {
            let encoded = storage::db::encode(&entry);
            bytes += encoded.len();
            batch.put_cf(cf, self.key(entry.log_id.index), encoded);
            last = Some(entry.log_id);
            count += 1;
        }
        self.appended_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let shard = self.shard;
        let flushed = move |outcome: io::Result<()>| {
            if let Err(e) = &outcome {
                tracing::error!(shard, count, error = %e, "log append not synced");
            } else {
                tracing::trace!(shard, count, last = ?last, "log entries flushed");
            }
            callback.log_io_completed(outcome);
        };
        self.store.write_then_sync(batch, Box::new(flushed)).map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<u64>> {
        let cf = self.store.cf(columns::RAFT_LOG).map_err(|e| StorageIOError::write_logs(&e))?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, self.key(log_id.index).as_slice(), self.end_key().as_slice());
        self.write_durable(batch).await.map_err(|e| StorageIOError::write_logs(&e))?;
        tracing::debug!(shard = self.shard, since = %log_id, "log truncated");
        Ok(())
    }

    /// Durable: besides removing entries it persists every earlier unsynced write of
    /// the shared write-ahead log, including the state-machine writes the purged
    /// entries produced.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<u64>> {
        let cf = self.store.cf(columns::RAFT_LOG).map_err(|e| StorageIOError::write_logs(&e))?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, self.key(0), self.key(log_id.index.saturating_add(1)));
        meta::put(&self.store, &mut batch, self.shard, meta::PURGED, &Some(log_id))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.write_durable(batch).await.map_err(|e| StorageIOError::write_logs(&e))?;
        tracing::debug!(shard = self.shard, upto = %log_id, "log purged");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::index_bounds;

    #[test]
    fn range_bounds_become_half_open_indexes() {
        assert_eq!(index_bounds(&(3..7)), (3, Some(7)));
        assert_eq!(index_bounds(&(3..=7)), (3, Some(8)));
        assert_eq!(index_bounds(&(..)), (0, None));
        assert_eq!(index_bounds(&(5..)), (5, None));
        assert_eq!(index_bounds(&(..=u64::MAX)), (0, None));
    }
}
