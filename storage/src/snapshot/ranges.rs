//! The record sets a snapshot names by range instead of copying: an ISPB's messages
//! and its audit records. Both are immutable once written, keyed `prefix ‖ n (BE
//! u64)`, appended in order and purged only from below, so the records a replica
//! holds of one set are one contiguous run `[first, last]` — and a replica that has
//! applied a prefix of the shard's history holds exactly the records of that
//! prefix. A snapshot therefore carries `RecordRange`s, and the receiver fetches
//! only the part of each range it lacks (`missing`), page by page from a replica
//! that has applied at least as far (`read_page` there, `write_page` here), before
//! installing.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Ispb, Store, audit, columns, keys};

/// A ranged record set of one ISPB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordSet {
    /// `messages`: `ISPB ‖ seq`.
    Messages = 0,
    /// `audit` records: `ISPB ‖ 'r' ‖ seq` (the checkpoints beside them are copied).
    AuditRecords = 1,
}

impl RecordSet {
    /// Every set, in tag order.
    pub const ALL: [RecordSet; 2] = [RecordSet::Messages, RecordSet::AuditRecords];

    /// The set of a snapshot tag byte.
    pub fn from_tag(tag: u8) -> Option<RecordSet> {
        RecordSet::ALL.into_iter().find(|s| *s as u8 == tag)
    }

    /// The family holding the set.
    pub fn cf(self) -> &'static str {
        match self {
            RecordSet::Messages => columns::MESSAGES,
            RecordSet::AuditRecords => columns::AUDIT,
        }
    }

    /// The key prefix shared by every record of `ispb` in the set.
    pub fn prefix(self, ispb: &Ispb) -> Vec<u8> {
        match self {
            RecordSet::Messages => ispb.as_bytes().to_vec(),
            RecordSet::AuditRecords => audit::record_key(ispb, 0)[..9].to_vec(),
        }
    }

    /// The key of record `n` of `ispb`.
    pub fn key(self, ispb: &Ispb, n: u64) -> Vec<u8> {
        let mut key = self.prefix(ispb);
        key.extend_from_slice(&n.to_be_bytes());
        key
    }

    fn number_of(self, ispb: &Ispb, key: &[u8]) -> Option<u64> {
        let tail = key.strip_prefix(self.prefix(ispb).as_slice())?;
        Some(u64::from_be_bytes(tail.try_into().ok()?))
    }
}

/// Records `first..=last` of one set of one ISPB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRange {
    pub set: RecordSet,
    pub ispb: Ispb,
    pub first: u64,
    pub last: u64,
}

impl RecordRange {
    /// How many records the range spans.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range holds at least its first record.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn part(&self, first: u64, last: u64) -> RecordRange {
        RecordRange { first, last, ..*self }
    }
}

/// Records of one set read for another replica, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPage {
    /// `(n, value)` of each record found.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where the next page starts, when this one stopped at its byte budget.
    pub next: Option<u64>,
}

/// The run of `set` that `ispb` holds in `store`, as seen by `view` (`None`: none).
pub(crate) fn held_run(
    store: &Store,
    view: &rocksdb::SnapshotWithThreadMode<'_, rocksdb::DB>,
    set: RecordSet,
    ispb: &Ispb,
) -> Result<Option<(u64, u64)>> {
    let cf = store.cf(set.cf())?;
    let prefix = set.prefix(ispb);
    let first = view.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)).next().transpose()?;
    let Some(first) = first.and_then(|(key, _)| set.number_of(ispb, &key)) else { return Ok(None) };
    let end = keys::prefix_end(&prefix);
    let last = view.iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse)).next().transpose()?;
    let last = last.and_then(|(key, _)| set.number_of(ispb, &key)).unwrap_or(first);
    Ok(Some((first, last)))
}

/// The parts of `range` this store does not hold: none, one or two ranges around
/// the run it holds.
pub fn missing(store: &Store, range: &RecordRange) -> Result<Vec<RecordRange>> {
    let cf = store.cf(range.set.cf())?;
    let db = store.db();
    let (from, to) = (range.set.key(&range.ispb, range.first), range.set.key(&range.ispb, range.last));
    let first = db.iterator_cf(cf, IteratorMode::From(&from, Direction::Forward)).next().transpose()?;
    let held_first = first.and_then(|(key, _)| range.set.number_of(&range.ispb, &key)).filter(|n| *n <= range.last);
    let Some(held_first) = held_first else { return Ok(vec![*range]) };
    let last = db.iterator_cf(cf, IteratorMode::From(&to, Direction::Reverse)).next().transpose()?;
    let held_last = last.and_then(|(key, _)| range.set.number_of(&range.ispb, &key)).unwrap_or(held_first);
    let mut parts = Vec::new();
    if held_first > range.first {
        parts.push(range.part(range.first, held_first - 1));
    }
    if held_last < range.last {
        parts.push(range.part(held_last + 1, range.last));
    }
    Ok(parts)
}

/// Reads the records of `range` this store holds, from the first, until `max_bytes`
/// of values are read (at least one record).
pub fn read_page(store: &Store, range: &RecordRange, max_bytes: usize) -> Result<RecordPage> {
    let cf = store.cf(range.set.cf())?;
    let from = range.set.key(&range.ispb, range.first);
    let mut page = RecordPage::default();
    let mut bytes = 0usize;
    for item in store.db().iterator_cf(cf, IteratorMode::From(&from, Direction::Forward)) {
        let (key, value) = item?;
        let Some(n) = range.set.number_of(&range.ispb, &key).filter(|n| *n <= range.last) else { break };
        if bytes >= max_bytes && !page.records.is_empty() {
            page.next = Some(n);
            break;
        }
        bytes += value.len();
        page.records.push((n, value.to_vec()));
    }
    Ok(page)
}

/// Writes a page read for `range` by another replica. Every record must lie in the
/// range, in ascending order; nothing is written otherwise. Not synced: the install
/// that follows is.
pub fn write_page(store: &Store, range: &RecordRange, page: &RecordPage) -> Result<()> {
    let cf = store.cf(range.set.cf())?;
    let mut batch = WriteBatch::default();
    let mut previous = None;
    for (n, value) in &page.records {
        if *n < range.first || *n > range.last || previous.is_some_and(|p| p >= *n) {
            return Err(Error::Snapshot(format!(
                "record {n} out of order or outside {}..={}",
                range.first, range.last
            )));
        }
        previous = Some(*n);
        batch.put_cf(cf, range.set.key(&range.ispb, *n), value);
    }
    store.write_relaxed(batch)
}

/// Deletes the records of `set` of `ispb` outside `kept` (all of them when `None`).
pub(crate) fn clear_outside(
    store: &Store,
    set: RecordSet,
    ispb: &Ispb,
    kept: Option<(u64, u64)>,
    batch: &mut WriteBatch,
) -> Result<()> {
    let cf = store.cf(set.cf())?;
    let prefix = set.prefix(ispb);
    let end = keys::prefix_end(&prefix);
    match kept {
        None => batch.delete_range_cf(cf, prefix.as_slice(), end.as_slice()),
        Some((first, last)) => {
            batch.delete_range_cf(cf, prefix.as_slice(), set.key(ispb, first).as_slice());
            if let Some(after) = last.checked_add(1) {
                batch.delete_range_cf(cf, set.key(ispb, after).as_slice(), end.as_slice());
            }
        }
    }
    Ok(())
}
