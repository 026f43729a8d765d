//! `PullService`: the stream protocol of SPEC.md §2.2–2.5 — open, continue and close
//! a stream — with no HTTP in it.
//!
//! A read that can progress is proposed as a Raft command (`OpenStream`/`Pull`); a
//! read that cannot (nothing outstanding, nothing available, or everything available
//! claimed by other streams' reads in flight, see `claims`) waits on the ISPB's
//! notification instead of proposing, until the deadline or shutdown (`long_poll`).
//! A retry with the previous token is answered from the applied state without a
//! proposal. Replay tokens are served by `replay`.

use std::sync::Arc;

use storage::audit::Origin;
use storage::{Command, CommandResult, Handout, Ispb, ReadOutlook, Seq, Store, StoredMessage};
use tokio_util::sync::CancellationToken;

use super::activity::{AdvanceGuard, StreamActivity};
use super::claims::ReadClaims;
use super::long_poll::{LongPoll, WaitEnd};
use super::notify::Notifier;
use super::read::{Read, ReadSize, Slots, StreamPosition};
use crate::config::Config;
use crate::context::RequestContext;
use crate::error::Error;
use crate::load::Load;
use crate::metrics::Churn;
use crate::shard_client::ShardClient;
use token::{KeyRing, StreamKind, TokenClaims};
use wire::clock::now_ms;

/// The pull protocol of one node.
pub struct PullService {
    config: Arc<Config>,
    shards: ShardClient,
    store: Store,
    keys: KeyRing,
    notifier: Arc<Notifier>,
    /// Which waiting streams of an ISPB go to Raft after a wake-up.
    claims: ReadClaims,
    activity: Arc<StreamActivity>,
    /// The node's in-flight count: a waiting long poll steps out of it.
    load: Arc<Load>,
    /// Cancelled when the node shuts down: waiting long polls answer at once.
    shutdown: CancellationToken,
    /// Redeliveries, expiries and previous-token retries, for the metrics.
    churn: Churn,
}

impl PullService {
    /// The service over the node's shards, store and key ring; `notifier` is the one
    /// the shards' state machines wake.
    pub fn new(
        config: Arc<Config>,
        shards: ShardClient,
        store: Store,
        keys: KeyRing,
        notifier: Arc<Notifier>,
        load: Arc<Load>,
        shutdown: CancellationToken,
    ) -> PullService {
        PullService {
            config,
            shards,
            store,
            keys,
            claims: ReadClaims::new(notifier.clone()),
            notifier,
            activity: Arc::new(StreamActivity::default()),
            load,
            shutdown,
            churn: Churn::default(),
        }
    }

    /// The wake-ups of waiting long polls so far.
    pub fn wake_counts(&self) -> super::WakeCounts {
        self.notifier.counts()
    }

    /// The cursor-churn counters this service feeds.
    pub fn churn(&self) -> &Churn {
        &self.churn
    }

    /// `stream/start`: opens a stream and performs its first read.
    pub async fn open(&self, ctx: &RequestContext, ispb: Ispb, size: ReadSize) -> Result<Read, Error> {
        // A paused tenant, or every slot taken, in the applied state: refuse without
        // a Raft write (a client opening streams in a loop would cost one fsync
        // each), in the order the state machine checks. Opens that pass are checked
        // again, atomically, when they apply.
        let state = self
            .shards
            .read(&ispb, |m| m.tenant(&ispb).map(|t| (t.settings.paused, t.open_streams(), t.settings.max_streams)));
        match state.flatten() {
            Some((true, ..)) => return Err(Error::Rejected(storage::Rejection::TenantPaused)),
            Some((false, open, limit)) if open >= limit => {
                return Err(Error::Rejected(storage::Rejection::TooManyStreams { open, limit }));
            }
            _ => {}
        }
        let limit = self.batch_limit(size);
        let command = Command::OpenStream {
            ispb,
            now_ms: now_ms(),
            max_batch: limit,
            auto_create: self.config.auto_create(),
            origin: ctx.origin(),
        };
        let handout = expect_handout(self.shards.propose(command).await?)?;
        tracing::Span::current().record("stream", handout.stream);
        let guard = self.activity.begin_advance(ispb, handout.stream)?;
        tracing::debug!(request_id = %ctx.request_id, %ispb, stream = handout.stream, seqs = handout.seqs.len(), "stream opened");
        let position = self.position_of(ispb, &handout);
        self.deliver_or_wait(position, handed_messages(handout)?, limit, ctx.origin(), guard).await
    }

    /// `stream/{token}`: confirms the outstanding batch and reads the next one; with
    /// the previous token, repeats the outstanding batch.
    pub async fn next(&self, ctx: &RequestContext, ispb: Ispb, token: &str, size: ReadSize) -> Result<Read, Error> {
        let claims = self.verify_token(ctx, &ispb, token)?;
        if claims.kind == StreamKind::Replay {
            return self.replay_next(ctx, ispb, &claims, size).await;
        }
        self.activity.touch(ispb, claims.stream);
        let Some(state) = self.current_stream_state(&ispb, &claims).await? else {
            return Err(Error::StreamClosed);
        };
        let mut position = state.position;
        let limit = self.batch_limit(size);
        if claims.generation + 1 == position.generation {
            // The previous token: the client lost our answer; send the same batch again.
            if state.batch.len() > limit as usize {
                return Err(Error::BatchTooLarge { held: state.batch.len() });
            }
            let messages = self.read_messages(&ispb, &state.batch)?;
            self.churn.retries.inc();
            return Ok(self.read(&position, messages));
        }
        if claims.generation < position.generation {
            return Err(Error::StaleCursor);
        }
        if claims.generation > position.generation {
            return Err(Error::InvalidCursor("token names a read the stream never made"));
        }
        let guard = self.activity.begin_advance(ispb, claims.stream)?;
        position.generation = claims.generation;
        self.deliver_or_wait(position, Vec::new(), limit, ctx.origin(), guard).await
    }

    /// DELETE `stream/{token}`: closes the stream; the current token confirms its
    /// batch, the previous one returns it for redelivery. Returns the slots after.
    pub async fn close(&self, ctx: &RequestContext, ispb: Ispb, token: &str) -> Result<Slots, Error> {
        let claims = self.verify_token(ctx, &ispb, token)?;
        if claims.kind == StreamKind::Replay {
            return self.replay_close(ctx, ispb, &claims).await;
        }
        let command = Command::CloseStream {
            ispb,
            stream: claims.stream,
            generation: claims.generation,
            now_ms: now_ms(),
            origin: ctx.origin(),
        };
        match self.shards.propose(command).await? {
            CommandResult::Closed { confirmed, redelivered, open_streams, max_streams } => {
                self.activity.forget(ispb, claims.stream);
                self.churn.redeliveries.inc_by(redelivered as u64);
                tracing::debug!(request_id = %ctx.request_id, %ispb, stream = claims.stream, confirmed, redelivered, "stream closed");
                Ok(Slots { open: open_streams, limit: max_streams })
            }
            CommandResult::Rejected(rejection) => Err(rejection.into()),
            other => Err(unexpected(&other)),
        }
    }

    /// The node's stream activity (the sweeper expires what went idle).
    pub(super) fn activity(&self) -> &StreamActivity {
        &self.activity
    }

    /// How the service reaches the shards (also used by the audit routes).
    pub fn shards(&self) -> &ShardClient {
        &self.shards
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub(super) fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// How many messages one answer of `size` may carry.
    pub(super) fn batch_limit(&self, size: ReadSize) -> u32 {
        match size {
            ReadSize::One => 1,
            ReadSize::Batch => self.config.max_batch,
        }
    }

    /// Answers with `handed` (what a stream's opening read handed out) if anything;
    /// otherwise proposes reads whenever one can progress and waits for the ISPB's
    /// notification in between, up to the long-poll deadline.
    async fn deliver_or_wait(
        &self,
        mut position: StreamPosition,
        handed: Vec<StoredMessage>,
        limit: u32,
        origin: Origin,
        _guard: AdvanceGuard,
    ) -> Result<Read, Error> {
        if !handed.is_empty() {
            return Ok(self.read(&position, handed));
        }
        let poll = LongPoll::new(self.config.long_poll_wait, &self.shutdown);
        let ispb = position.ispb;
        loop {
            let mut wake = self.notifier.subscribe(&ispb);
            // A shard this node does not host must be proposed to: the proposal reports why not.
            let outlook = self
                .shards
                .read(&ispb, |m| m.read_outlook(&ispb, position.stream, position.generation))
                .unwrap_or(ReadOutlook::MUST_PROPOSE);
            let claim = self.claims.claim(ispb, outlook.available, u64::from(limit));
            if outlook.must_propose || claim.is_some() {
                let command = Command::Pull {
                    ispb,
                    stream: position.stream,
                    generation: position.generation,
                    max_batch: limit,
                    now_ms: now_ms(),
                    origin: origin.clone(),
                };
                let handout = expect_handout(self.shards.propose(command).await?)?;
                if let Some(mut claim) = claim {
                    claim.handed(handout.seqs.len());
                }
                position = self.position_of(ispb, &handout);
                if !handout.seqs.is_empty() {
                    return Ok(self.read(&position, handed_messages(handout)?));
                }
            }
            // Waiting for messages is not work: it does not count towards shedding.
            let waiting = self.load.waiting();
            let end = poll.wait(&mut wake).await;
            drop(waiting);
            if end != WaitEnd::Woken {
                break;
            }
        }
        Ok(self.read(&position, Vec::new()))
    }

    /// The stream's state, caught up with the shard when the local state looks behind
    /// the token: a token names a stream this node has not seen open, or a read it
    /// has not applied yet, when a new leader is still applying what the previous one
    /// committed. Only a state that is still behind after the barrier is the client's
    /// error.
    async fn current_stream_state(&self, ispb: &Ispb, claims: &TokenClaims) -> Result<Option<StreamSnapshot>, Error> {
        let state = self.stream_state(ispb, claims.stream);
        if state.as_ref().is_some_and(|s| claims.generation <= s.position.generation) {
            return Ok(state);
        }
        self.shards.catch_up(ispb).await?;
        Ok(self.stream_state(ispb, claims.stream))
    }

    fn stream_state(&self, ispb: &Ispb, stream: u64) -> Option<StreamSnapshot> {
        let shard = self.shards.shard_for(ispb);
        self.shards
            .read(ispb, |m| {
                let tenant = m.tenant(ispb)?;
                let s = tenant.streams.get(&stream)?;
                Some(StreamSnapshot {
                    position: StreamPosition {
                        ispb: *ispb,
                        shard,
                        stream,
                        generation: s.generation,
                        handed_at_ms: s.handed_at_ms,
                        slots: Slots { open: tenant.open_streams(), limit: tenant.settings.max_streams },
                        kind: StreamKind::Live,
                    },
                    batch: s.batch.clone(),
                })
            })
            .flatten()
    }

    fn position_of(&self, ispb: Ispb, handout: &Handout) -> StreamPosition {
        StreamPosition::of_handout(ispb, self.shards.shard_for(&ispb), handout)
    }

    fn read(&self, position: &StreamPosition, messages: Vec<StoredMessage>) -> Read {
        Read {
            messages,
            pull_next: position.pull_next(&self.keys),
            slots: position.slots,
            replay: position.kind == StreamKind::Replay,
        }
    }

    fn verify_token(&self, ctx: &RequestContext, ispb: &Ispb, token: &str) -> Result<TokenClaims, Error> {
        let claims = self.keys.verify_for(token, ispb.as_bytes()).inspect_err(|e| {
            tracing::warn!(request_id = %ctx.request_id, %ispb, reason = %e, security_event = true, "invalid cursor presented");
        })?;
        if claims.shard != self.shards.shard_for(ispb) {
            return Err(Error::InvalidCursor("token names another shard"));
        }
        tracing::Span::current().record("stream", claims.stream);
        Ok(claims)
    }

    fn read_messages(&self, ispb: &Ispb, seqs: &[Seq]) -> Result<Vec<StoredMessage>, Error> {
        let messages =
            self.store.read_messages(ispb, seqs).map_err(|e| Error::Internal(format!("read messages: {e}")))?;
        every_message(seqs.len(), messages)
    }
}

/// A stream's state as the applied log has it.
struct StreamSnapshot {
    position: StreamPosition,
    batch: Vec<Seq>,
}

/// The messages of a hand-out, as the state machine read them when it applied.
fn handed_messages(handout: Handout) -> Result<Vec<StoredMessage>, Error> {
    every_message(handout.seqs.len(), handout.messages)
}

/// `messages` when all `handed` of them are there: a handed-out message is never
/// purged, so one missing is the node's fault.
fn every_message(handed: usize, messages: Vec<StoredMessage>) -> Result<Vec<StoredMessage>, Error> {
    if messages.len() != handed {
        return Err(Error::Internal(format!("{} of {handed} handed-out messages missing", handed - messages.len())));
    }
    Ok(messages)
}

fn expect_handout(result: CommandResult) -> Result<Handout, Error> {
    match result {
        CommandResult::Handout(handout) => Ok(handout),
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(unexpected(&other)),
    }
}

pub(super) fn unexpected(result: &CommandResult) -> Error {
    Error::Internal(format!("unexpected command result {result:?}"))
}
