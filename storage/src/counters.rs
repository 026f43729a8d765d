//! `StoreCounters`: what the store has done since it opened — write batches, the keys
//! and bytes they carried, fsyncs of the write-ahead log, messages read — for the
//! node's metrics and the load tool's cost per delivered message.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals, shared by every handle of one store.
#[derive(Default, Debug)]
pub(crate) struct StoreCounters {
    writes: AtomicU64,
    written_keys: AtomicU64,
    written_bytes: AtomicU64,
    syncs: AtomicU64,
    message_reads: AtomicU64,
}

/// The totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Write batches handed to RocksDB (each one write-ahead-log record).
    pub writes: u64,
    /// Puts and deletes in those batches.
    pub written_keys: u64,
    /// Bytes of those batches, keys and values.
    pub written_bytes: u64,
    /// fsyncs of the write-ahead log (the shared syncer's and synced writes').
    pub syncs: u64,
    /// Stored messages read back (hand-outs, audit resource ids, ages).
    pub message_reads: u64,
}

impl StoreCounters {
    pub(crate) fn wrote(&self, keys: usize, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.written_keys.fetch_add(keys as u64, Ordering::Relaxed);
        self.written_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn synced(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read_messages(&self, count: usize) {
        self.message_reads.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> StoreCounts {
        StoreCounts {
            writes: self.writes.load(Ordering::Relaxed),
            written_keys: self.written_keys.load(Ordering::Relaxed),
            written_bytes: self.written_bytes.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            message_reads: self.message_reads.load(Ordering::Relaxed),
        }
    }
}
