//! One reader stream of a PSP and its outstanding batch.

use serde::{Deserialize, Serialize};

use crate::{Seq, StreamId};

/// The replicated state of one open stream.
///
/// `generation` counts the reads that handed out messages; a token for generation
/// `g` continues the stream after the read that produced `batch` (when `g` equals
/// `generation`). `handed_at_ms` is the time of that read: tokens are signed over it,
/// so re-issuing a token for the same read yields the identical token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub id: StreamId,
    pub generation: u64,
    /// Seqs handed out by the last read and not yet confirmed, ascending.
    pub batch: Vec<Seq>,
    pub handed_at_ms: u64,
    pub opened_at_ms: u64,
}
