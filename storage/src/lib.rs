//! `pixstream-storage` (imported as `storage`): the durable state of pixstream.
//!
//! It owns RocksDB, the column families and their key encodings, the domain model
//! (tenants, messages, streams, batches) and the deterministic state machine that
//! applies commands to it. It knows nothing of tokio, openraft or HTTP: the `raft`
//! crate feeds it committed commands, and the server reads what it wrote.
//!
//! Layout:
//! - `error`    — `Error`, this crate's one error enum.
//! - `ispb`     — `Ispb`, the participant id, and the stable ISPB → shard hash.
//! - `columns`  — the column family names, in one place.
//! - `keys`     — big-endian fixed-width key encodings (byte order = seq order).
//! - `db`       — `Store`: opening RocksDB, synced writes, message reads.
//! - `counters` — `StoreCounts`: writes, keys, bytes, fsyncs and message reads so far.
//! - `message`  — messages as appended and as stored.
//! - `tenant`   — per-ISPB settings and delivery state (watermark, redelivery set).
//! - `stream`   — one reader stream and its outstanding batch.
//! - `command`  — `Command` (what may change state) and `CommandResult`.
//! - `machine`  — `ShardMachine`: applies commands of one shard into a `WriteBatch`.
//! - `audit`    — the hash-chained audit log per ISPB, its checkpoints and verifier.
//! - `retention` — how far an ISPB's confirmed messages past retention may be purged.
//! - `replay`   — compliance replay streams: what is kept of them, from-time lookup.
//! - `snapshot` — a shard's state as a snapshot file (`ranges`: the records it names
//!   instead of copying, fetched by the receiver; `install`).
//! - `wake`     — `Wake`: whether an apply made messages available or changed streams.
//! - `wal_sync` — `WalSyncer`: one fsync thread shared by every shard's log appends.
//!
//! Invariant: `ShardMachine::apply` never reads the clock or randomness; everything
//! time- or id-dependent arrives inside the command, so every replica computes the
//! same state from the same log.

pub mod audit;
pub mod columns;
pub mod command;
pub mod counters;
pub mod db;
pub mod error;
pub mod ispb;
pub mod keys;
pub mod machine;
pub mod message;
pub mod replay;
pub mod retention;
pub mod snapshot;
pub mod stream;
pub mod tenant;
pub mod wake;
pub mod wal_sync;

pub use command::{AppendOutcome, Command, CommandResult, Handout, Rejection};
pub use counters::StoreCounts;
pub use db::{DEFAULT_BACKGROUND_WRITE_BYTES_PER_SEC, Store, StoreOptions};
pub use error::Error;
pub use ispb::{Ispb, shard_of};
pub use machine::{ReadOutlook, ShardMachine};
pub use message::{NewMessage, StoredMessage};
pub use replay::ReplayState;
pub use stream::StreamState;
pub use tenant::{TenantSettings, TenantState};
pub use wake::Wake;

/// Position of a message in its ISPB's log: starts at 1, contiguous, never reused.
pub type Seq = u64;
/// Id of a stream within its ISPB: assigned by the state machine from a counter.
pub type StreamId = u64;
