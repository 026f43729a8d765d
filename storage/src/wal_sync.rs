//! `WalSyncer`: group fsync for the whole node.
//!
//! Every shard's Raft log shares one RocksDB write-ahead log. A log append writes its
//! batch without syncing and hands a completion to the syncer; one thread fsyncs the
//! write-ahead log once for everything written before that moment, then runs every
//! completion that was waiting. Sixteen shards appending at once cost one fsync, and
//! no writer blocks on the disk: the Raft core learns of durability through the
//! completion (openraft's `LogFlushed`), which is exactly the contract it asks for.
//!
//! Fault injection: `set_delay` makes every fsync wait that long first, as a slow
//! disk would (off by default; the failure-domain tests and drills use it through
//! `Store::inject_sync_delay`).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::DB;

use crate::counters::StoreCounters;

/// Runs once the writes issued before it are durable (or the sync failed).
pub type Completion = Box<dyn FnOnce(io::Result<()>) + Send>;

/// The node's one fsync thread. Dropping it finishes the completions already queued.
pub(crate) struct WalSyncer {
    tx: Mutex<Option<Sender<Completion>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Injected wait before each fsync, in microseconds (0: none).
    delay_micros: Arc<AtomicU64>,
}

impl WalSyncer {
    /// Starts the thread syncing `db`'s write-ahead log.
    pub(crate) fn start(db: Arc<DB>, counters: Arc<StoreCounters>) -> io::Result<WalSyncer> {
        let (tx, rx) = channel();
        let delay_micros = Arc::new(AtomicU64::new(0));
        let delay = delay_micros.clone();
        let thread = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || sync_loop(&db, &rx, &delay, &counters))?;
        Ok(WalSyncer { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)), delay_micros })
    }

    /// Fault injection: every fsync from now on first waits `delay` (zero: off).
    pub(crate) fn set_delay(&self, delay: Duration) {
        self.delay_micros.store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Queues `done` behind the next fsync. Every write that returned before this
    /// call is covered by that fsync.
    pub(crate) fn after_sync(&self, done: Completion) {
        let unsent = match self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.send(done).err().map(|e| e.0),
            None => Some(done),
        };
        if let Some(done) = unsent {
            done(Err(io::Error::other("the write-ahead log syncer has stopped")));
        }
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// Waits for a completion, takes every other one queued meanwhile, syncs once (after
/// the injected `delay`, if any), and answers them all; ends when every sender is
/// gone.
fn sync_loop(db: &DB, rx: &Receiver<Completion>, delay: &AtomicU64, counters: &StoreCounters) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let micros = delay.load(Ordering::Relaxed);
        if micros > 0 {
            std::thread::sleep(Duration::from_micros(micros));
        }
        let outcome = db.flush_wal(true).map_err(|e| e.to_string());
        counters.synced();
        if let Err(reason) = &outcome {
            tracing::error!(%reason, waiting = waiting.len(), "write-ahead log sync failed");
        }
        for done in waiting {
            done(outcome.clone().map_err(io::Error::other));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use rocksdb::WriteBatch;

    use crate::{Store, StoreOptions, columns};

    #[test]
    fn completions_run_after_the_sync_and_the_write_survives_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
        let (tx, rx) = channel();
        for i in 0u8..20 {
            let mut batch = WriteBatch::default();
            batch.put_cf(store.cf(columns::RAFT_LOG).expect("cf"), [i], [i]);
            let tx = tx.clone();
            store
                .write_then_sync(batch, Box::new(move |outcome| tx.send((i, outcome.is_ok())).expect("send")))
                .expect("write");
        }
        let mut seen: Vec<_> = (0..20).map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("completed")).collect();
        seen.sort();
        assert_eq!(seen, (0u8..20).map(|i| (i, true)).collect::<Vec<_>>());
        // Dropping the last handle stops the syncer and releases the database lock.
        drop(store);
        let store = Store::open(dir.path(), StoreOptions::default()).expect("reopen at once");
        assert_eq!(store.get(columns::RAFT_LOG, &[7]).expect("read"), Some(vec![7]));
    }

    #[test]
    fn an_injected_delay_holds_each_completion_until_it_passed_and_can_be_lifted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
        let delay = Duration::from_millis(150);
        let durable_after = |i: u8| {
            let (tx, rx) = channel();
            let mut batch = WriteBatch::default();
            batch.put_cf(store.cf(columns::RAFT_LOG).expect("cf"), [i], [i]);
            let started = std::time::Instant::now();
            store
                .write_then_sync(batch, Box::new(move |outcome| tx.send(outcome.is_ok()).expect("send")))
                .expect("write");
            assert!(rx.recv_timeout(Duration::from_secs(10)).expect("completed"), "synced");
            started.elapsed()
        };
        store.inject_sync_delay(delay);
        assert!(durable_after(1) >= delay, "the sync waited for the injected delay");
        store.inject_sync_delay(Duration::ZERO);
        durable_after(2);
        assert_eq!(store.get(columns::RAFT_LOG, &[1]).expect("read"), Some(vec![1]), "nothing lost");
    }
}
