//! Per-ISPB settings and delivery state: where the log ends, what was handed out,
//! what must go out again, and the confirmed low watermark.
//!
//! The hand-out order rule lives here: messages returned for redelivery go first,
//! lowest seq first, then never-handed seqs in order. Because every returned seq is
//! below `next_hand`, a batch is always ascending.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::audit::ChainHead;
use crate::{Ispb, ReplayState, Seq, StreamId, StreamState};

/// Operator-set limits of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Open streams allowed at once (ICOM: 6).
    pub max_streams: u32,
    /// Unconfirmed messages above which producers get back-pressure.
    pub max_backlog: u64,
    /// How long confirmed messages are kept, in seconds.
    pub retention_secs: u64,
    /// Requests per second allowed to this ISPB (token bucket rate).
    pub rate_per_sec: u32,
    /// Token bucket size.
    pub rate_burst: u32,
    /// A paused tenant's pulls are refused; producers may still append.
    pub paused: bool,
    /// While set (to its reason), no retention purge touches the tenant's messages.
    pub legal_hold: Option<String>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            max_streams: 6,
            max_backlog: 1_000_000,
            retention_secs: 7 * 24 * 3600,
            rate_per_sec: 10_000,
            rate_burst: 20_000,
            paused: false,
            legal_hold: None,
        }
    }
}

/// Everything replicated about one ISPB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantState {
    pub ispb: Ispb,
    pub settings: TenantSettings,
    /// Seq the next appended message gets.
    pub next_seq: Seq,
    /// Lowest seq never handed out.
    pub next_hand: Seq,
    /// Every seq below it is confirmed; it never passes an unconfirmed message.
    pub watermark: Seq,
    /// Confirmed seqs at or above the watermark (confirmed out of order).
    pub confirmed_above: BTreeSet<Seq>,
    /// Handed out earlier, returned unconfirmed: they go out again first.
    pub redeliver: BTreeSet<Seq>,
    /// Id the next opened stream gets; ids are never reused.
    pub next_stream_id: StreamId,
    /// Where the ISPB's audit chain stands.
    pub audit: ChainHead,
    /// When an operator deleted the tenant: its messages, streams and dedupe keys
    /// are gone; the record stays for its audit chain and its seqs, so that a
    /// tenant created again under the ISPB continues both.
    pub deleted_at_ms: Option<u64>,
    /// Open compliance replays by id (`replay`).
    pub replays: BTreeMap<StreamId, ReplayState>,
    /// Open streams by id (persisted in their own family).
    #[serde(skip)]
    pub streams: BTreeMap<StreamId, StreamState>,
}

impl TenantState {
    /// A new, empty tenant.
    pub fn new(ispb: Ispb, settings: TenantSettings) -> TenantState {
        TenantState {
            ispb,
            settings,
            next_seq: 1,
            next_hand: 1,
            watermark: 1,
            confirmed_above: BTreeSet::new(),
            redeliver: BTreeSet::new(),
            next_stream_id: 1,
            audit: ChainHead::default(),
            deleted_at_ms: None,
            replays: BTreeMap::new(),
            streams: BTreeMap::new(),
        }
    }

    /// Whether the tenant exists (it was not deleted, or was created again since).
    pub fn is_live(&self) -> bool {
        self.deleted_at_ms.is_none()
    }

    /// Messages appended but not yet confirmed.
    pub fn backlog(&self) -> u64 {
        (self.next_seq - self.watermark).saturating_sub(self.confirmed_above.len() as u64)
    }

    /// How many messages a read could hand out now.
    pub fn available_count(&self) -> u64 {
        self.redeliver.len() as u64 + self.next_seq.saturating_sub(self.next_hand)
    }

    /// Number of open streams.
    pub fn open_streams(&self) -> u32 {
        self.streams.len() as u32
    }

    /// Cuts the next batch of at most `max` seqs: redeliveries first (lowest first),
    /// then new seqs in order. The result is ascending.
    pub fn take_available(&mut self, max: usize) -> Vec<Seq> {
        let mut batch = Vec::with_capacity(max.min(16));
        while batch.len() < max {
            match self.redeliver.pop_first() {
                Some(seq) => batch.push(seq),
                None => break,
            }
        }
        while batch.len() < max && self.next_hand < self.next_seq {
            batch.push(self.next_hand);
            self.next_hand += 1;
        }
        batch
    }

    /// Confirms seqs handed out earlier and advances the watermark over every
    /// contiguous confirmed seq.
    pub fn confirm(&mut self, seqs: &[Seq]) {
        for &seq in seqs {
            if seq >= self.watermark {
                self.confirmed_above.insert(seq);
            }
        }
        while self.confirmed_above.remove(&self.watermark) {
            self.watermark += 1;
        }
    }

    /// Returns unconfirmed seqs for redelivery.
    pub fn return_for_redelivery(&mut self, seqs: &[Seq]) {
        self.redeliver.extend(seqs.iter().copied().filter(|s| *s >= self.watermark));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_with(messages: u64) -> TenantState {
        let mut t = TenantState::new(Ispb::parse("32074986").expect("valid"), TenantSettings::default());
        t.next_seq += messages;
        t
    }

    #[test]
    fn redeliveries_go_first_and_batches_ascend() {
        let mut t = tenant_with(10);
        let first = t.take_available(3);
        assert_eq!(first, vec![1, 2, 3]);
        let second = t.take_available(3);
        assert_eq!(second, vec![4, 5, 6]);
        t.return_for_redelivery(&[5, 4, 6]);
        t.return_for_redelivery(&first);
        assert_eq!(t.take_available(4), vec![1, 2, 3, 4]);
        assert_eq!(t.take_available(10), vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(t.available_count(), 0);
    }

    #[test]
    fn watermark_waits_for_the_lowest_unconfirmed() {
        let mut t = tenant_with(6);
        let a = t.take_available(3);
        let b = t.take_available(3);
        t.confirm(&b);
        assert_eq!(t.watermark, 1);
        assert_eq!(t.backlog(), 3);
        t.confirm(&a);
        assert_eq!(t.watermark, 7);
        assert!(t.confirmed_above.is_empty());
        assert_eq!(t.backlog(), 0);
    }
}
