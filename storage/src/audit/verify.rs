//! Checking an audit export: every record's hash matches its content, every record
//! links to the one before it (seq + 1, `prev` = that record's hash), every
//! checkpoint is signed by a known key and matches the record it seals, no checkpoint
//! seals a record the export lacks (a log cut short), and which records no
//! checkpoint covers. Each problem is a `Finding`; a clean report has none.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::{AuditEntry, AuditRecord, Checkpoint, Digest};
use crate::Ispb;

/// One problem found in an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// A record's content does not hash to the hash it carries (it was changed).
    AlteredRecord { chain: Ispb, seq: u64, expected: Digest, actual: Digest },
    /// A record does not follow the one before it: its seq is not `after + 1` or its
    /// `prev` is not that record's hash (a record was removed, inserted or moved).
    BrokenLink { chain: Ispb, seq: u64, after: u64, expected: Digest, actual: Digest },
    /// A checkpoint seals a record whose hash is not the one it states.
    CheckpointMismatch { chain: Ispb, upto: u64, expected: Digest, actual: Digest },
    /// A checkpoint seals record `checkpoint_upto` but the chain ends at `last_seq`.
    Truncated { chain: Ispb, last_seq: u64, checkpoint_upto: u64 },
    /// A checkpoint's signature does not verify with its key.
    BadSignature { chain: Ispb, upto: u64, key_id: String },
    /// A checkpoint names a key the verifier was not given.
    UnknownKey { chain: Ispb, upto: u64, key_id: String },
    /// Records after the last valid checkpoint: no signature vouches for them.
    UnsealedTail { chain: Ispb, from_seq: u64, to_seq: u64 },
}

impl Finding {
    /// Whether the finding shows the records were changed (as opposed to not sealed).
    pub fn is_integrity_failure(&self) -> bool {
        !matches!(self, Finding::UnsealedTail { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::AlteredRecord { chain, seq, expected, actual } => {
                write!(f, "{chain} record {seq}: content hashes to {actual}, the record says {expected}")
            }
            Finding::BrokenLink { chain, seq, after, expected, actual } => write!(
                f,
                "{chain} record {seq} after record {after}: broken link, expected prev {expected}, found {actual}"
            ),
            Finding::CheckpointMismatch { chain, upto, expected, actual } => {
                write!(f, "{chain} checkpoint {upto}: seals hash {expected}, record {upto} has {actual}")
            }
            Finding::Truncated { chain, last_seq, checkpoint_upto } => write!(
                f,
                "{chain}: truncated, the chain ends at record {last_seq} but a checkpoint seals record {checkpoint_upto}"
            ),
            Finding::BadSignature { chain, upto, key_id } => {
                write!(f, "{chain} checkpoint {upto}: signature does not verify with key {key_id}")
            }
            Finding::UnknownKey { chain, upto, key_id } => {
                write!(f, "{chain} checkpoint {upto}: unknown key {key_id}")
            }
            Finding::UnsealedTail { chain, from_seq, to_seq } => {
                write!(f, "{chain} records {from_seq}..={to_seq}: unsealed, no checkpoint covers them")
            }
        }
    }
}

/// What verifying an export found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub chains: usize,
    pub records_checked: u64,
    pub checkpoints_checked: u64,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// No finding at all.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first record whose link or content is broken, if any.
    pub fn first_broken(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| matches!(f, Finding::AlteredRecord { .. } | Finding::BrokenLink { .. }))
    }
}

/// Verifies `entries` (records and checkpoints of any chains, in export order) with
/// the checkpoint public keys by key id.
pub fn verify_entries(entries: &[AuditEntry], keys: &HashMap<String, VerifyingKey>) -> VerifyReport {
    let mut chains: BTreeMap<Ispb, (Vec<&AuditRecord>, Vec<&Checkpoint>)> = BTreeMap::new();
    for entry in entries {
        match entry {
            AuditEntry::Record(r) => chains.entry(r.chain).or_default().0.push(r),
            AuditEntry::Checkpoint(c) => chains.entry(c.chain).or_default().1.push(c),
        }
    }
    let mut report = VerifyReport { chains: chains.len(), ..VerifyReport::default() };
    for (chain, (records, checkpoints)) in chains {
        verify_chain(chain, &records, &checkpoints, keys, &mut report);
    }
    report
}

fn verify_chain(
    chain: Ispb,
    records: &[&AuditRecord],
    checkpoints: &[&Checkpoint],
    keys: &HashMap<String, VerifyingKey>,
    report: &mut VerifyReport,
) {
    let findings = &mut report.findings;
    let mut valid_seals: BTreeMap<u64, Digest> = BTreeMap::new();
    for c in checkpoints {
        report.checkpoints_checked += 1;
        match keys.get(&c.key_id) {
            None => findings.push(Finding::UnknownKey { chain, upto: c.upto, key_id: c.key_id.clone() }),
            Some(key) if !c.signed_by(key) => {
                findings.push(Finding::BadSignature { chain, upto: c.upto, key_id: c.key_id.clone() })
            }
            Some(_) => {
                valid_seals.insert(c.upto, c.hash);
            }
        }
    }
    // The record before the export's first one: the chain's start, or a checkpoint.
    let mut previous: Option<(u64, Digest)> = match records.first() {
        Some(first) if first.seq == 1 => Some((0, Digest::ZERO)),
        Some(first) => valid_seals.get(&(first.seq - 1)).map(|hash| (first.seq - 1, *hash)),
        None => None,
    };
    let mut by_seq: HashMap<u64, Digest> = HashMap::with_capacity(records.len());
    for record in records {
        report.records_checked += 1;
        let computed = record.computed_hash();
        if computed != record.hash {
            findings.push(Finding::AlteredRecord { chain, seq: record.seq, expected: record.hash, actual: computed });
        }
        if let Some((after, hash)) = previous
            && (record.seq != after + 1 || record.prev != hash)
        {
            findings.push(Finding::BrokenLink { chain, seq: record.seq, after, expected: hash, actual: record.prev });
        }
        previous = Some((record.seq, record.hash));
        if computed == record.hash {
            by_seq.entry(record.seq).or_insert(record.hash);
        }
    }
    let first = records.first().map_or(0, |r| r.seq);
    let last = records.last().map_or(0, |r| r.seq);
    let mut sealed_upto = None;
    for (&upto, hash) in &valid_seals {
        if records.is_empty() || upto + 1 < first {
            continue;
        }
        if upto + 1 == first {
            sealed_upto = Some(upto);
            continue;
        }
        match by_seq.get(&upto) {
            Some(actual) if actual == hash => sealed_upto = Some(upto),
            Some(actual) => {
                findings.push(Finding::CheckpointMismatch { chain, upto, expected: *hash, actual: *actual })
            }
            None if upto > last => findings.push(Finding::Truncated { chain, last_seq: last, checkpoint_upto: upto }),
            None => findings.push(Finding::CheckpointMismatch { chain, upto, expected: *hash, actual: Digest::ZERO }),
        }
    }
    if records.is_empty()
        && let Some((&upto, _)) = valid_seals.iter().next_back()
    {
        findings.push(Finding::Truncated { chain, last_seq: 0, checkpoint_upto: upto });
    }
    let sealed = sealed_upto.unwrap_or(first.saturating_sub(1));
    if !records.is_empty() && last > sealed {
        findings.push(Finding::UnsealedTail { chain, from_seq: (sealed + 1).max(first), to_seq: last });
    }
}
