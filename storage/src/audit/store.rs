//! The audit family: `ISPB ‖ 'r' ‖ seq` → `AuditRecord` and `ISPB ‖ 'c' ‖ upto` →
//! `Checkpoint` (both under the ISPB prefix, so snapshots and clears carry them with
//! the tenant). Reading an export and the retention purge live here.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use super::{AuditRecord, ChainHead, Checkpoint};
use crate::db::decode;
use crate::error::Result;
use crate::{Ispb, Store, columns};

const RECORD: u8 = b'r';
const CHECKPOINT: u8 = b'c';
/// Most records one purge command deletes (bounds the time one apply takes).
pub const MAX_PURGE_PER_COMMAND: usize = 10_000;
/// Most records one export holds.
const MAX_EXPORT_RECORDS: usize = 1_000_000;
/// Leader clocks differ a little: an export starts scanning this long before the
/// checkpoint preceding `from_ms`.
const CLOCK_MARGIN_MS: u64 = 60_000;

/// One line of an audit export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuditEntry {
    Record(AuditRecord),
    Checkpoint(Checkpoint),
}

/// Which part of a chain an export holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportRange {
    /// Records from this time on (epoch ms).
    pub from_ms: u64,
    /// Records up to this time; the export still runs on to the next checkpoint so
    /// that its last records are sealed.
    pub to_ms: u64,
    /// Also the records after the newest checkpoint (no signature covers them).
    pub include_unsealed: bool,
}

/// The key of record `seq` of `ispb`'s chain.
pub fn record_key(ispb: &Ispb, seq: u64) -> [u8; 17] {
    key(ispb, RECORD, seq)
}

/// The key of the checkpoint sealing record `upto` of `ispb`'s chain.
pub fn checkpoint_key(ispb: &Ispb, upto: u64) -> [u8; 17] {
    key(ispb, CHECKPOINT, upto)
}

fn key(ispb: &Ispb, kind: u8, seq: u64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[..8].copy_from_slice(ispb.as_bytes());
    out[8] = kind;
    out[9..].copy_from_slice(&seq.to_be_bytes());
    out
}

impl Store {
    /// Every checkpoint of `ispb`'s chain, ascending.
    pub fn audit_checkpoints(&self, ispb: &Ispb) -> Result<Vec<Checkpoint>> {
        let cf = self.cf(columns::AUDIT)?;
        let start = checkpoint_key(ispb, 0);
        let mut out = Vec::new();
        for item in self.db().iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item?;
            if key.len() != 17 || key[..9] != start[..9] {
                break;
            }
            out.push(decode(columns::AUDIT, &value)?);
        }
        Ok(out)
    }

    /// Records of `ispb`'s chain from `from_seq` on, ascending, while `keep` holds.
    fn audit_records_from(
        &self,
        ispb: &Ispb,
        from_seq: u64,
        mut keep: impl FnMut(&AuditRecord) -> bool,
    ) -> Result<Vec<AuditRecord>> {
        let cf = self.cf(columns::AUDIT)?;
        let start = record_key(ispb, from_seq);
        let mut out = Vec::new();
        for item in self.db().iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (key, value) = item?;
            if key.len() != 17 || key[..9] != start[..9] {
                break;
            }
            let record: AuditRecord = decode(columns::AUDIT, &value)?;
            if !keep(&record) {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// The export of `ispb`'s chain (now at `head`) over `range`: its records and the
    /// checkpoints that seal them, plus any checkpoint beyond the newest stored
    /// record (the evidence of a log cut short).
    pub fn audit_export(&self, ispb: &Ispb, head: &ChainHead, range: ExportRange) -> Result<Vec<AuditEntry>> {
        let mut checkpoints = self.audit_checkpoints(ispb)?;
        // The one sealing the last purged record anchors the rest; older ones go.
        checkpoints.retain(|c| c.upto + 1 >= head.first);
        let sealed = checkpoints.last().map_or(0, |c| c.upto);
        let scan_from = checkpoints
            .iter()
            .rev()
            .find(|c| c.at_ms.saturating_add(CLOCK_MARGIN_MS) < range.from_ms)
            .map_or(1, |c| c.upto + 1);
        let mut count = 0usize;
        let mut cut: Option<u64> = None;
        let records = self.audit_records_from(ispb, scan_from, |r| {
            count += 1;
            if count > MAX_EXPORT_RECORDS || (!range.include_unsealed && r.seq > sealed) {
                return false;
            }
            if cut.is_none() && r.at_ms > range.to_ms {
                // Past the range: run on to the first checkpoint at or after the
                // last record in range.
                cut = Some(checkpoints.iter().map(|c| c.upto).find(|u| *u + 1 >= r.seq).unwrap_or(u64::MAX));
            }
            cut.is_none_or(|c| r.seq <= c)
        })?;
        let records = trim_before(records, range.from_ms);
        let newest_stored = self.audit_newest(ispb)?;
        let first = records.first().map_or(u64::MAX, |r| r.seq);
        let last = records.last().map_or(0, |r| r.seq);
        let mut anchors = checkpoints
            .into_iter()
            .filter(|c| (c.upto + 1 >= first && c.upto <= last) || c.upto > newest_stored.unwrap_or(head.first - 1))
            .peekable();
        // Records keep their stored order (a verifier must see a reordering); each
        // checkpoint goes before the first record past the one it seals.
        let mut entries: Vec<AuditEntry> = Vec::with_capacity(records.len() + 8);
        for record in records {
            while let Some(checkpoint) = anchors.next_if(|c| c.upto < record.seq) {
                entries.push(AuditEntry::Checkpoint(checkpoint));
            }
            entries.push(AuditEntry::Record(record));
        }
        entries.extend(anchors.map(AuditEntry::Checkpoint));
        Ok(entries)
    }

    /// Seq of the newest stored record of `ispb`'s chain.
    fn audit_newest(&self, ispb: &Ispb) -> Result<Option<u64>> {
        let cf = self.cf(columns::AUDIT)?;
        let end = record_key(ispb, u64::MAX);
        let mut iter = self.db().iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (key, _) = item?;
                let same_chain = key.len() == 17 && key[..9] == end[..9];
                Ok(same_chain.then(|| u64::from_be_bytes(key[9..17].try_into().unwrap_or_default())))
            }
            None => Ok(None),
        }
    }

    /// Deletes (into `batch`) the records of `ispb`'s chain older than `before_ms`,
    /// from `head.first` up to `limit_seq` (exclusive) and at most
    /// `MAX_PURGE_PER_COMMAND`, and the checkpoints no remaining record needs (the one
    /// sealing the last deleted record stays: it anchors the rest). Returns the new
    /// lowest stored seq.
    pub(crate) fn purge_audit(
        &self,
        ispb: &Ispb,
        head: &ChainHead,
        before_ms: u64,
        limit_seq: u64,
        batch: &mut WriteBatch,
    ) -> Result<u64> {
        let mut seen = 0usize;
        let old = self.audit_records_from(ispb, head.first, |r| {
            seen += 1;
            seen <= MAX_PURGE_PER_COMMAND && r.seq < limit_seq && r.at_ms < before_ms
        })?;
        let Some(last) = old.last().map(|r| r.seq) else { return Ok(head.first) };
        let cf = self.cf(columns::AUDIT)?;
        batch.delete_range_cf(cf, record_key(ispb, head.first), record_key(ispb, last + 1));
        batch.delete_range_cf(cf, checkpoint_key(ispb, 0), checkpoint_key(ispb, last));
        Ok(last + 1)
    }
}

/// Drops records before `from_ms` at the start (they were scanned only to find it).
fn trim_before(records: Vec<AuditRecord>, from_ms: u64) -> Vec<AuditRecord> {
    let start = records.iter().position(|r| r.at_ms >= from_ms).unwrap_or(records.len());
    records.into_iter().skip(start).collect()
}
