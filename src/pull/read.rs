//! What a read of a stream produces, in domain terms: where the stream stands
//! (`StreamPosition`, from which the next `PI-Pull-Next` is issued), the messages
//! handed out, and the ISPB's stream slots.

use storage::{Handout, Ispb, StoredMessage, StreamId};

use wire::paths::pull_next_path;

use token::{KeyRing, StreamKind, TokenClaims};

/// How many messages one answer may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSize {
    /// One bare message (`Accept: application/xml`, absent or `*/*`).
    One,
    /// Up to the configured batch (`Accept: multipart/mixed`).
    Batch,
}

/// Open and allowed streams of an ISPB (`Pix-Stream-Slots: <open>/<limit>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    pub open: u32,
    pub limit: u32,
}

/// Where a stream stands after a read: what the next token continues from.
#[derive(Clone, Debug)]
pub struct StreamPosition {
    pub ispb: Ispb,
    pub shard: u32,
    pub stream: StreamId,
    pub generation: u64,
    pub handed_at_ms: u64,
    pub slots: Slots,
    pub kind: StreamKind,
}

impl StreamPosition {
    /// The position a handout leaves its stream in.
    pub fn of_handout(ispb: Ispb, shard: u32, handout: &Handout) -> StreamPosition {
        StreamPosition {
            ispb,
            shard,
            stream: handout.stream,
            generation: handout.generation,
            handed_at_ms: handout.handed_at_ms,
            slots: Slots { open: handout.open_streams, limit: handout.max_streams },
            kind: StreamKind::Live,
        }
    }

    /// The `PI-Pull-Next` path continuing from this position. Deterministic: the
    /// same position always yields the same token.
    pub fn pull_next(&self, keys: &KeyRing) -> String {
        let token = keys.issue(&TokenClaims {
            ispb: *self.ispb.as_bytes(),
            shard: self.shard,
            stream: self.stream,
            generation: self.generation,
            issued_at_ms: self.handed_at_ms,
            kind: self.kind,
        });
        pull_next_path(self.ispb.as_str(), &token)
    }
}

/// The outcome of a read: the messages handed out (none after a long poll that
/// found nothing), the path of the next request, and the stream slots.
#[derive(Debug)]
pub struct Read {
    pub messages: Vec<StoredMessage>,
    /// Empty when nothing continues the stream (the end of a replay).
    pub pull_next: String,
    pub slots: Slots,
    /// Served by a compliance replay stream (`Pix-Replay: true` on each message).
    pub replay: bool,
}
