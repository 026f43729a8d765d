//! Compliance replay streams (SPEC.md §4): an operator opens one for an ISPB from a
//! seq (or the first message enqueued at or after a time) up to the end of the log
//! at that moment; the PSP reads it with the ordinary GET and token scheme. A
//! replay confirms nothing and changes no delivery state: its position travels in
//! its tokens, and the state machine keeps only which replays are open — for their
//! own slot limit, outside the production streams — and how far back they read,
//! which holds retention purges of the range until the replay ends or expires.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{Seq, Store, StreamId, TenantState, retention};

/// One open replay stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayState {
    /// Id from the tenant's stream counter (never equal to a live stream's).
    pub id: StreamId,
    /// First seq it reads.
    pub from: Seq,
    /// Seq after its last one: the tenant's next seq when it opened.
    pub end: Seq,
    pub opened_at_ms: u64,
    /// After this time it is gone: reads get 410 and it holds no slot or purge.
    pub expires_at_ms: u64,
}

impl ReplayState {
    /// Whether the replay is still open at `now_ms`.
    pub fn is_open_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// The first stored seq of `tenant` enqueued at or after `at_ms` (its next seq when
/// none is): where a replay "from a time" starts. Seqs are appended in time order,
/// so it is found by bisection with a few point reads.
pub fn seq_at_time(store: &Store, tenant: &TenantState, at_ms: u64) -> Result<Seq> {
    let Some(first) = retention::first_stored_seq(store, tenant)? else { return Ok(tenant.next_seq) };
    let (mut low, mut high) = (first, tenant.next_seq);
    // Invariant: every seq below `low` is older than `at_ms` (or purged); `high` is
    // the log end or enqueued at or after it.
    while low < high {
        let middle = low + (high - low) / 2;
        match store.enqueued_at(&tenant.ispb, middle)? {
            Some(at) if at < at_ms => low = middle + 1,
            _ => high = middle,
        }
    }
    Ok(low)
}

/// The lowest seq an open replay of `tenant` still reads at `now_ms`, if any: no
/// purge may reach it.
pub fn lowest_replayed(tenant: &TenantState, now_ms: u64) -> Option<Seq> {
    tenant.replays.values().filter(|r| r.is_open_at(now_ms)).map(|r| r.from).min()
}
