//! Typed access to one shard's records in the `RAFT_META` column family: the vote,
//! the last purged log id (log store), and the last applied log id
//! and membership (state machine). Values are bincode, like every stored record.

use rocksdb::WriteBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;
use storage::{Store, columns, keys};

/// The vote (`openraft::Vote<u64>`).
pub(crate) const VOTE: &str = "vote";
/// The last purged log id.
pub(crate) const PURGED: &str = "purged";
/// The last log id applied to the state machine.
pub(crate) const APPLIED: &str = "applied";
/// The last membership applied to the state machine.
pub(crate) const MEMBERSHIP: &str = "membership";

/// Reads one metadata record of `shard`.
pub(crate) fn get<T: DeserializeOwned>(store: &Store, shard: u32, tag: &str) -> Result<Option<T>, storage::Error> {
    store
        .get(columns::RAFT_META, &keys::shard_tag_key(shard, tag))?
        .map(|bytes| storage::db::decode(columns::RAFT_META, &bytes))
        .transpose()
}

/// Adds one metadata record of `shard` to `batch`.
pub(crate) fn put<T: Serialize>(
    store: &Store,
    batch: &mut WriteBatch,
    shard: u32,
    tag: &str,
    value: &T,
) -> Result<(), storage::Error> {
    batch.put_cf(store.cf(columns::RAFT_META)?, keys::shard_tag_key(shard, tag), storage::db::encode(value));
    Ok(())
}
