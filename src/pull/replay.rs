//! Compliance replay streams (SPEC.md §4; what is replicated of them:
//! `storage::replay`). An operator opens one (`open_replay`) from a seq or a time;
//! its first `PI-Pull-Next` goes to the PSP, who reads it on the public API like
//! any stream. A replay's position travels in its tokens — the `generation` claim
//! is the next seq it reads — so a read proposes nothing, confirms nothing and
//! never waits: it answers the next messages of the range at once, each marked
//! `Pix-Replay: true`, or, at the end of the range, 204 without `PI-Pull-Next`
//! (the replay then closes). Retrying a token answers the same messages. A
//! replay that expired, was closed, or whose next messages are gone answers 410.

use storage::{Command, CommandResult, Ispb, ReplayState, Seq};
use token::{StreamKind, TokenClaims};
use wire::clock::now_ms;

use super::read::{Read, ReadSize, Slots, StreamPosition};
use super::service::{PullService, unexpected};
use crate::context::RequestContext;
use crate::error::Error;

/// Where a replay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    Seq(Seq),
    /// The first message enqueued at or after this time (epoch milliseconds).
    Time(u64),
}

/// A replay just opened: its state, the replays open with it, its first path.
#[derive(Clone, Debug)]
pub struct ReplayOpened {
    pub replay: ReplayState,
    pub slots: Slots,
    pub pull_next: String,
}

impl PullService {
    /// Opens a replay of `ispb` (the operator's admin call, on the shard's leader).
    pub async fn open_replay(&self, ctx: &RequestContext, ispb: Ispb, from: ReplayFrom) -> Result<ReplayOpened, Error> {
        self.shards().catch_up(&ispb).await?;
        let from = match from {
            ReplayFrom::Seq(seq) => seq,
            ReplayFrom::Time(at_ms) => {
                let store = self.store().clone();
                self.shards()
                    .read(&ispb, |m| m.tenant(&ispb).map(|t| storage::replay::seq_at_time(&store, t, at_ms)))
                    .flatten()
                    .ok_or(Error::Rejected(storage::Rejection::TenantNotFound))?
                    .map_err(|e| Error::Internal(format!("replay start: {e}")))?
            }
        };
        let command = Command::OpenReplay {
            ispb,
            from,
            limit: self.config().max_replay_streams,
            lifetime_ms: self.config().replay_lifetime.as_millis() as u64,
            now_ms: now_ms(),
            origin: ctx.origin(),
        };
        match self.shards().propose(command).await? {
            CommandResult::ReplayOpened { replay, open, limit } => {
                let slots = Slots { open, limit };
                let pull_next = self.replay_position(ispb, &replay, replay.from, slots).pull_next(self.keys());
                tracing::info!(request_id = %ctx.request_id, %ispb, replay = replay.id, from = replay.from, end = replay.end, "replay opened");
                Ok(ReplayOpened { replay, slots, pull_next })
            }
            CommandResult::Rejected(rejection) => Err(rejection.into()),
            other => Err(unexpected(&other)),
        }
    }

    /// GET with a replay token: the next messages of its range.
    pub(super) async fn replay_next(
        &self,
        ctx: &RequestContext,
        ispb: Ispb,
        claims: &TokenClaims,
        size: ReadSize,
    ) -> Result<Read, Error> {
        let (replay, slots) = self.open_replay_state(ispb, claims.stream).await?;
        let now = now_ms();
        let next = claims.generation;
        if !replay.is_open_at(now) {
            self.close_replay(ctx, ispb, replay.id).await?;
            return Err(Error::StreamClosed);
        }
        if next < replay.from || next > replay.end {
            return Err(Error::InvalidCursor("token names a read the stream never made"));
        }
        let until = next.saturating_add(u64::from(self.batch_limit(size))).min(replay.end);
        let seqs: Vec<Seq> = (next..until).collect();
        if seqs.is_empty() {
            self.close_replay(ctx, ispb, replay.id).await?;
            return Ok(Read { messages: Vec::new(), pull_next: String::new(), slots, replay: true });
        }
        let messages =
            self.store().read_messages(&ispb, &seqs).map_err(|e| Error::Internal(format!("replay read: {e}")))?;
        if messages.len() != seqs.len() {
            // Purged after the replay expired from the purge's view: nothing to replay.
            return Err(Error::StreamClosed);
        }
        let position = self.replay_position(ispb, &replay, until, slots);
        Ok(Read { messages, pull_next: position.pull_next(self.keys()), slots, replay: true })
    }

    /// DELETE with a replay token: closes the replay; the replay slots after.
    pub(super) async fn replay_close(
        &self,
        ctx: &RequestContext,
        ispb: Ispb,
        claims: &TokenClaims,
    ) -> Result<Slots, Error> {
        let (replay, slots) = self.open_replay_state(ispb, claims.stream).await?;
        self.close_replay(ctx, ispb, replay.id).await?;
        Ok(Slots { open: slots.open.saturating_sub(1), limit: slots.limit })
    }

    /// The replay `id` of `ispb` and the replay slots, from the applied state
    /// (after catching up once when this node does not know it yet).
    async fn open_replay_state(&self, ispb: Ispb, id: u64) -> Result<(ReplayState, Slots), Error> {
        let limit = self.config().max_replay_streams;
        let look = || {
            self.shards()
                .read(&ispb, |m| {
                    let tenant = m.tenant(&ispb)?;
                    let open = tenant.replays.len() as u32;
                    tenant.replays.get(&id).map(|r| (r.clone(), Slots { open, limit }))
                })
                .flatten()
        };
        if let Some(found) = look() {
            return Ok(found);
        }
        self.shards().catch_up(&ispb).await?;
        look().ok_or(Error::StreamClosed)
    }

    async fn close_replay(&self, ctx: &RequestContext, ispb: Ispb, replay: u64) -> Result<(), Error> {
        let command = Command::CloseReplay { ispb, replay, now_ms: now_ms(), origin: ctx.origin() };
        match self.shards().propose(command).await? {
            CommandResult::ReplayClosed(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn replay_position(&self, ispb: Ispb, replay: &ReplayState, next: Seq, slots: Slots) -> StreamPosition {
        StreamPosition {
            ispb,
            shard: self.shards().shard_for(&ispb),
            stream: replay.id,
            generation: next,
            handed_at_ms: replay.opened_at_ms,
            slots,
            kind: StreamKind::Replay,
        }
    }
}
