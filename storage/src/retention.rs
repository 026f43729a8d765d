//! Message retention (SPEC.md §4): confirmed messages older than the tenant's
//! retention are purged. The shard leader finds how far (`purge_point`) and proposes
//! `Command::PurgeRetained { below, now_ms }`; applying it deletes the ISPB's
//! messages below `below` with one range tombstone, after checking — on every replica
//! alike — that they are all confirmed (`below` never passes the watermark) and that
//! the newest of them is past retention. Unconfirmed messages are never purged,
//! whatever their age: the watermark stops at the oldest one. A legal hold on the
//! tenant stops every purge until it is lifted, and an open replay stream holds
//! the purge of everything from where it reads.
//!
//! Producer dedupe keys past the dedupe window are purged the same way: the leader
//! walks a tenant's keys a slice at a time (`expired_dedupe_keys`) and proposes
//! `Command::PurgeDedupe` with those it found; each replica deletes a listed key
//! only if its record is older than the command's `before_ms`.

use rocksdb::{Direction, IteratorMode};

use crate::db::decode;
use crate::error::Result;
use crate::message::DedupeRecord;
use crate::{Ispb, Seq, Store, TenantState, columns, keys};

/// Messages enqueued before this time are past `tenant`'s retention at `now_ms`.
pub fn cutoff_ms(tenant: &TenantState, now_ms: u64) -> u64 {
    now_ms.saturating_sub(tenant.settings.retention_secs.saturating_mul(1_000))
}

/// The seq below which `tenant`'s messages may be purged at `now_ms`, if that
/// purges anything: the first stored seq under the watermark enqueued at or after
/// the retention cutoff (or the watermark itself). Seqs are appended in time order,
/// so it is found by bisection with a few point reads.
pub fn purge_point(store: &Store, tenant: &TenantState, now_ms: u64) -> Result<Option<Seq>> {
    if tenant.settings.legal_hold.is_some() {
        return Ok(None);
    }
    let Some(first) = first_stored_seq(store, tenant)? else { return Ok(None) };
    let cutoff = cutoff_ms(tenant, now_ms);
    let replayed = crate::replay::lowest_replayed(tenant, now_ms).unwrap_or(Seq::MAX);
    let (mut old, mut young) = (first, tenant.watermark.min(replayed));
    if old >= young || store.enqueued_at(&tenant.ispb, old)?.is_none_or(|at| at >= cutoff) {
        return Ok(None);
    }
    // Invariant: `old` is past retention; `young` is not, or is the watermark.
    while young - old > 1 {
        let middle = old + (young - old) / 2;
        match store.enqueued_at(&tenant.ispb, middle)? {
            Some(at) if at < cutoff => old = middle,
            _ => young = middle,
        }
    }
    Ok(Some(young))
}

/// The lowest seq of `tenant` still stored.
pub fn first_stored_seq(store: &Store, tenant: &TenantState) -> Result<Option<Seq>> {
    let cf = store.cf(columns::MESSAGES)?;
    let start = keys::message_key(&tenant.ispb, 0);
    let mut iter = store.db().iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
    let Some(item) = iter.next() else { return Ok(None) };
    let (key, _) = item?;
    Ok((key.len() == 16 && key[..8] == tenant.ispb.as_bytes()[..])
        .then(|| u64::from_be_bytes(key[8..16].try_into().unwrap_or_default())))
}

/// A slice of `ispb`'s dedupe keys walked for expiry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupeScan {
    /// Keys (without the ISPB prefix) whose record is older than `before_ms`.
    pub expired: Vec<String>,
    /// Where the next slice starts; `None` when the walk reached the end.
    pub resume_after: Option<String>,
}

/// Walks at most `limit` of `ispb`'s dedupe records after `after` (from the first
/// when `None`) and lists the keys whose record is older than `before_ms`.
pub fn expired_dedupe_keys(
    store: &Store,
    ispb: &Ispb,
    before_ms: u64,
    after: Option<&str>,
    limit: usize,
) -> Result<DedupeScan> {
    let cf = store.cf(columns::DEDUPE)?;
    let start = keys::dedupe_key(ispb, after.unwrap_or_default());
    let mut scan = DedupeScan::default();
    let mut walked = 0;
    for item in store.db().iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
        let (key, value) = item?;
        let Some(name) = key.strip_prefix(ispb.as_bytes()) else { break };
        let name = String::from_utf8_lossy(name).into_owned();
        if after == Some(name.as_str()) {
            continue;
        }
        let record: DedupeRecord = decode(columns::DEDUPE, &value)?;
        if record.at_ms < before_ms {
            scan.expired.push(name.clone());
        }
        walked += 1;
        if walked == limit {
            scan.resume_after = Some(name);
            break;
        }
    }
    Ok(scan)
}
