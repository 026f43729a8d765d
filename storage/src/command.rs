//! `Command`: every change of shard state, as it travels in the Raft log, and
//! `CommandResult`: what applying it produced. Rejections are results, not errors:
//! they are decided by the state machine, identically on every replica, and change
//! nothing.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditAction, Checkpoint, Origin};
use crate::{Ispb, NewMessage, ReplayState, Seq, StoredMessage, StreamId, TenantSettings};

/// A state change of one ISPB. Times and ids come from the leader that proposed it;
/// `origin` names who asked, for the audit record the change leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create or update a tenant's settings (delivery state is kept).
    UpsertTenant { ispb: Ispb, settings: TenantSettings, now_ms: u64, origin: Origin },
    /// Append messages to the ISPB's log, all or nothing; repeats within the dedupe
    /// window are reported with their original seq instead of being stored again.
    Append {
        ispb: Ispb,
        now_ms: u64,
        /// Settings to create the tenant with when it does not exist; `None` refuses.
        auto_create: Option<TenantSettings>,
        dedupe_window_ms: u64,
        messages: Vec<NewMessage>,
        origin: Origin,
    },
    /// Open a stream if a slot is free and hand out its first batch.
    OpenStream { ispb: Ispb, now_ms: u64, max_batch: u32, auto_create: Option<TenantSettings>, origin: Origin },
    /// Continue a stream with the token of `generation`: confirm its outstanding
    /// batch and hand out the next one (or, for the previous generation, repeat the
    /// outstanding batch without confirming anything).
    Pull { ispb: Ispb, stream: StreamId, generation: u64, max_batch: u32, now_ms: u64, origin: Origin },
    /// Close a stream: with the current generation its batch is confirmed, with the
    /// previous one it goes back for redelivery.
    CloseStream { ispb: Ispb, stream: StreamId, generation: u64, now_ms: u64, origin: Origin },
    /// Close a stream that stayed idle; its batch goes back for redelivery. A no-op
    /// when the stream has moved past `generation` meanwhile.
    ExpireIdle { ispb: Ispb, stream: StreamId, generation: u64, now_ms: u64 },
    /// Record an access event (a forbidden request, an invalid token) in the ISPB's
    /// audit chain; nothing else changes. Ignored for an ISPB with no tenant.
    Audit { ispb: Ispb, now_ms: u64, origin: Origin, action: AuditAction, outcome: String },
    /// Store a checkpoint the leader signed over its chain head; ignored unless it
    /// seals a record of the chain, after the last checkpoint, with that record's hash.
    AuditSeal { checkpoint: Checkpoint },
    /// Delete the ISPB's audit records older than `before_ms` (audit retention).
    AuditPurge { ispb: Ispb, before_ms: u64 },
    /// Delete the ISPB's messages below seq `below` (message retention): applied only
    /// when all of them are confirmed (`below` at or under the watermark), the one
    /// just below `below` was enqueued more than the tenant's retention before
    /// `now_ms`, and the tenant is under no legal hold; else a no-op. The leader finds `below` (`retention::purge_point`).
    PurgeRetained { ispb: Ispb, below: Seq, now_ms: u64 },
    /// Move the ISPB's watermark to `to`: back (everything from `to` is delivered
    /// again) or forward (everything below `to` counts as confirmed; needs a
    /// `reason`). Every open stream is closed, so no outstanding batch survives.
    /// Refused for a `to` below the oldest stored message or past the next seq.
    MoveCursor { ispb: Ispb, to: Seq, now_ms: u64, origin: Origin, reason: String },
    /// Delete the tenant: refused while it holds unconfirmed messages or open
    /// streams unless `force` (with a `reason`), and always under legal hold. Its
    /// messages and dedupe keys are deleted, its streams closed; its audit chain and
    /// seqs live on for a tenant created again under the ISPB.
    DeleteTenant { ispb: Ispb, force: bool, reason: String, now_ms: u64, origin: Origin },
    /// Open a compliance replay from `from` to the log's end (`replay`), if fewer
    /// than `limit` replays are open; it expires `lifetime_ms` after `now_ms`.
    /// Refused for a `from` below the oldest stored message or past the next seq.
    OpenReplay { ispb: Ispb, from: Seq, limit: u32, lifetime_ms: u64, now_ms: u64, origin: Origin },
    /// Close a replay (it reached its end, its reader deleted it, or it expired).
    CloseReplay { ispb: Ispb, replay: StreamId, now_ms: u64, origin: Origin },
    /// Delete the listed dedupe keys of the ISPB whose record is older than
    /// `before_ms` (past the dedupe window); the others are left alone.
    PurgeDedupe { ispb: Ispb, before_ms: u64, keys: Vec<String> },
}

impl Command {
    /// The ISPB the command changes.
    pub fn ispb(&self) -> &Ispb {
        match self {
            Command::UpsertTenant { ispb, .. }
            | Command::Append { ispb, .. }
            | Command::OpenStream { ispb, .. }
            | Command::Pull { ispb, .. }
            | Command::CloseStream { ispb, .. }
            | Command::ExpireIdle { ispb, .. }
            | Command::Audit { ispb, .. }
            | Command::AuditPurge { ispb, .. }
            | Command::PurgeRetained { ispb, .. }
            | Command::MoveCursor { ispb, .. }
            | Command::DeleteTenant { ispb, .. }
            | Command::OpenReplay { ispb, .. }
            | Command::CloseReplay { ispb, .. }
            | Command::PurgeDedupe { ispb, .. } => ispb,
            Command::AuditSeal { checkpoint } => &checkpoint.chain,
        }
    }
}

/// What applying a command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    TenantUpserted,
    /// One outcome per appended message, in request order.
    Appended(Vec<AppendOutcome>),
    /// A read of a stream (also the first read of `OpenStream`).
    Handout(Handout),
    /// The stream is closed; `redelivered` seqs went back to the queue. The ISPB's
    /// stream slots after the close come along for `Pix-Stream-Slots`.
    Closed {
        confirmed: usize,
        redelivered: usize,
        open_streams: u32,
        max_streams: u32,
    },
    /// The idle stream is closed (`true`) or had moved on and stays open (`false`).
    Expired(bool),
    /// An audit command was applied (`true`) or ignored (`false`).
    Audited(bool),
    /// Messages (or dedupe keys) were purged (`true`), or the purge did not hold
    /// and nothing changed.
    Purged(bool),
    /// The watermark moved from `from` to `to`; `closed_streams` were closed.
    CursorMoved {
        from: Seq,
        to: Seq,
        closed_streams: usize,
    },
    /// The tenant is deleted: `discarded` unconfirmed messages went with it and
    /// `closed_streams` were closed.
    TenantDeleted {
        discarded: u64,
        closed_streams: usize,
    },
    /// A replay opened; `open` replays of `limit` are open with it.
    ReplayOpened {
        replay: ReplayState,
        open: u32,
        limit: u32,
    },
    /// The replay was closed (`true`), or was not open (`false`).
    ReplayClosed(bool),
    Rejected(Rejection),
}

/// The batch a read handed to a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handout {
    pub stream: StreamId,
    /// Generation the next token continues from.
    pub generation: u64,
    /// Time of the read that produced `seqs` (tokens are signed over it).
    pub handed_at_ms: u64,
    /// The outstanding batch, ascending; empty when nothing was available.
    pub seqs: Vec<Seq>,
    /// The messages at `seqs`, in the same order, read once when the command applied
    /// (its audit record names their ids), so the reader does not read them again. A
    /// seq whose message is no longer stored is missing here.
    pub messages: Vec<StoredMessage>,
    /// `true` when the batch was cut by this command, `false` for a repeat of the
    /// outstanding batch (retry with the previous token).
    pub fresh: bool,
    pub open_streams: u32,
    pub max_streams: u32,
}

/// The fate of one appended message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    pub seq: Seq,
    pub resource_id: String,
    pub duplicate: bool,
}

/// Why a command changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    TenantNotFound,
    TenantPaused,
    TooManyStreams {
        open: u32,
        limit: u32,
    },
    /// The stream is not open (closed, expired, or never existed).
    StreamClosed,
    /// The token is older than the previous read of an open stream.
    StaleCursor,
    /// The token names a generation the stream never reached.
    UnknownGeneration,
    /// A cursor move to a seq outside `first..=next` (below the oldest stored
    /// message, or past the next one).
    CursorOutOfRange {
        first: Seq,
        next: Seq,
    },
    /// Skipping messages (or deleting a tenant that holds some) needs a written reason.
    ReasonRequired,
    /// The tenant holds unconfirmed messages or open streams: deleting it needs force.
    TenantNotEmpty {
        backlog: u64,
        open_streams: u32,
    },
    /// The tenant is under legal hold: it cannot be deleted until the hold is lifted.
    UnderLegalHold,
    /// The unconfirmed backlog is over the tenant's limit.
    Backpressure {
        backlog: u64,
        limit: u64,
    },
}
