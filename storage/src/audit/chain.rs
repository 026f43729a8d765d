//! `ChainHead`: where an ISPB's audit chain stands — kept in the tenant state, so it
//! is replicated, snapshotted and reloaded with it.

use serde::{Deserialize, Serialize};

use super::Digest;

/// The position of one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Seq the next record gets (records start at 1).
    pub next: u64,
    /// Hash of record `next - 1` (`Digest::ZERO` before the first).
    pub last: Digest,
    /// Seq of the last record a checkpoint seals (0: none yet).
    pub sealed: u64,
    /// Lowest seq still stored (retention removes records below it).
    pub first: u64,
}

impl Default for ChainHead {
    fn default() -> Self {
        ChainHead { next: 1, last: Digest::ZERO, sealed: 0, first: 1 }
    }
}

impl ChainHead {
    /// Seq of the newest record, if any.
    pub fn newest(&self) -> Option<u64> {
        (self.next > 1).then(|| self.next - 1)
    }

    /// Records written since the last checkpoint.
    pub fn unsealed(&self) -> u64 {
        (self.next - 1).saturating_sub(self.sealed)
    }
}
