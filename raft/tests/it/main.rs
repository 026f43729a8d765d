//! Integration tests of the raft crate on real RocksDB stores in temp directories:
//! openraft's storage suite, shard groups end to end, restart and snapshots; and
//! multi-node clusters over real sockets (`harness`, `peer_server`, `cluster`).

mod cluster;
mod harness;
mod idle;
mod peer_server;
mod restart;
mod shards;
mod snapshot;
mod suite;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use raft::{ApplyObserver, Shards, ShardsConfig};
use storage::{Command, Ispb, NewMessage, Store, StoreOptions, TenantSettings, Wake};

/// Parses a literal ISPB.
pub fn ispb(text: &str) -> Ispb {
    Ispb::parse(text).expect("test ISPBs are valid")
}

/// Opens the store under `dir`, waiting while a previous handle in this process
/// still holds the RocksDB lock (openraft tasks drop theirs shortly after shutdown).
pub async fn open_store(dir: &Path) -> Store {
    let path = dir.join("db");
    let mut last = None;
    for _ in 0..100 {
        match Store::open(&path, StoreOptions::default()) {
            Ok(store) => return store,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("store did not open: {last:?}");
}

/// A fast single-node configuration under `dir`.
pub fn config(dir: &Path, shards: u32) -> ShardsConfig {
    ShardsConfig {
        shards,
        snapshot_dir: dir.join("snapshots"),
        heartbeat_ms: 100,
        election_timeout_ms: (300, 600),
        ..ShardsConfig::default()
    }
}

/// Starts the shards and waits for their leaders.
pub async fn start(store: Store, config: ShardsConfig, observer: Arc<dyn ApplyObserver>) -> Shards {
    let shards = Shards::start(store, config, observer).await.expect("shards start");
    shards.wait_for_leaders(Duration::from_secs(10)).await.expect("every shard elects a leader");
    shards
}

/// An append of one message with dedupe key `key`, creating the tenant if needed.
pub fn append(ispb: Ispb, key: &str) -> Command {
    Command::Append {
        ispb,
        now_ms: 1_000,
        auto_create: Some(TenantSettings::default()),
        dedupe_window_ms: 60_000,
        messages: vec![NewMessage {
            resource_id: format!("R{key}"),
            dedupe_key: key.to_owned(),
            msg_type: "pacs.008.spi.1.14".into(),
            body: Bytes::from(format!("<Document><Id>{key}</Id></Document>")),
        }],
        origin: Default::default(),
    }
}

/// Records every ISPB it is told to wake, and the widest reason given.
#[derive(Default)]
pub struct RecordingObserver {
    pub woken: Mutex<BTreeSet<Ispb>>,
    pub reasons: Mutex<BTreeMap<Ispb, Wake>>,
}

impl ApplyObserver for RecordingObserver {
    fn wake(&self, wakes: &BTreeMap<Ispb, Wake>) {
        self.woken.lock().extend(wakes.keys().copied());
        let mut reasons = self.reasons.lock();
        for (ispb, why) in wakes {
            let entry = reasons.entry(*ispb).or_insert(*why);
            *entry = entry.and(*why);
        }
    }
}
