//! Installing a snapshot into a shard machine: every ISPB it names or the replica
//! holds is replaced by the snapshot's state, keeping of its messages and audit
//! records exactly the ranges the snapshot names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use rocksdb::WriteBatch;

use super::ranges::{self, RecordRange, RecordSet};
use super::{Entry, for_each_entry};
use crate::error::Result;
use crate::{Ispb, ShardMachine, Store, columns, keys};

/// The range kept of each set of each ISPB.
type Kept = BTreeMap<(RecordSet, Ispb), (u64, u64)>;

impl ShardMachine {
    /// Replaces the shard's state with the snapshot read from `input`, recording it
    /// in `batch` (the caller adds Raft metadata, writes, then calls `reload`).
    /// `ranges` are the ranges the file names (`read_ranges`); the store must already
    /// hold their records (`ranges::missing` says which it lacks) — records of those
    /// sets outside the ranges are deleted. Returns the number of records copied.
    pub fn install_snapshot<R: Read>(
        &mut self,
        input: &mut R,
        ranges: &[RecordRange],
        batch: &mut WriteBatch,
    ) -> Result<u64> {
        let store = self.store().clone();
        let kept: Kept = ranges.iter().map(|r| ((r.set, r.ispb), (r.first, r.last))).collect();
        let mut cleared: BTreeSet<Ispb> = BTreeSet::new();
        for ispb in self.records().map(|t| t.ispb).collect::<Vec<_>>() {
            clear_ispb(&store, &ispb, &kept, batch)?;
            cleared.insert(ispb);
        }
        let mut records = 0u64;
        for_each_entry(input, |entry| {
            let ispb = entry.ispb()?;
            if cleared.insert(ispb) {
                clear_ispb(&store, &ispb, &kept, batch)?;
            }
            if let Entry::Record { cf, key, value } = entry {
                batch.put_cf(store.cf(cf)?, key, value);
                records += 1;
            }
            Ok(())
        })?;
        Ok(records)
    }
}

/// Deletes every state record of one ISPB except the kept ranges of its record sets.
fn clear_ispb(store: &Store, ispb: &Ispb, kept: &Kept, batch: &mut WriteBatch) -> Result<()> {
    let end = keys::prefix_end(ispb.as_bytes());
    for name in columns::STATE {
        let cf = store.cf(name)?;
        let mut start = ispb.as_bytes().to_vec();
        for set in RecordSet::ALL.into_iter().filter(|s| s.cf() == name) {
            let prefix = set.prefix(ispb);
            if start < prefix {
                batch.delete_range_cf(cf, start.as_slice(), prefix.as_slice());
            }
            ranges::clear_outside(store, set, ispb, kept.get(&(set, *ispb)).copied(), batch)?;
            start = keys::prefix_end(&prefix);
        }
        if start < end {
            batch.delete_range_cf(cf, start.as_slice(), end.as_slice());
        }
    }
    Ok(())
}
