//! openraft's own storage test suite against `LogStore` + `StateMachine`.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use parking_lot::RwLock;
use raft::{LogStore, NoopObserver, StateMachine, TypeConfig};
use storage::{ShardMachine, Store, StoreOptions};
use tempfile::TempDir;

/// A fresh store in its own temp dir per test; the `TempDir` is the guard.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = TempDir::new().map_err(|e| StorageIOError::write(&e))?;
        let store = Store::open(&dir.path().join("db"), StoreOptions { fsync: false, ..StoreOptions::default() })
            .map_err(|e| StorageIOError::write(&e))?;
        let machine = ShardMachine::load(store.clone(), 0, 1).map_err(|e| StorageIOError::read(&e))?;
        let sm = StateMachine::open(
            store.clone(),
            Arc::new(RwLock::new(machine)),
            Arc::new(NoopObserver),
            &dir.path().join("snapshots"),
            // openraft's suite installs snapshots this store built: nothing is missing.
            Arc::new(store.clone()),
        )
        .map_err(|e| StorageIOError::read(&e))?;
        Ok((dir, LogStore::new(store, 0), sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).expect("openraft storage suite");
}
