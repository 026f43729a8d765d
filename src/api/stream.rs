//! The PSP pull endpoints (SPEC.md §2): `GET …/stream/start`, `GET …/stream/{token}`
//! and `DELETE …/stream/{token}`, with the long poll that waits for messages.
//!
//! A read that can progress is proposed as a Raft command (`OpenStream`/`Pull`); a
//! read that cannot (nothing outstanding, nothing available or everything available
//! claimed by other streams' reads in flight, see `read_claims`) waits on the ISPB's
//! notification instead of proposing, until the deadline or shutdown. A retry with
//! the previous token is answered from the applied state without a proposal.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use storage::{Command, CommandResult, Handout, Ispb, ReadOutlook, Seq};
use tokio::time::Instant;

use crate::activity::AdvanceGuard;
use crate::api::negotiate::ReadPrefs;
use crate::api::path::{CursorSegments, IspbSegment};
use crate::api::reply::{StreamPosition, read_response};
use crate::app::{App, AppState};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::token::{StreamKind, TokenClaims};

/// `GET /api/v1/out/{ispb}/stream/start`: opens a stream and performs its first read.
pub async fn start(
    State(app): State<AppState>,
    IspbSegment(ispb): IspbSegment,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let prefs = ReadPrefs::from_headers(&headers)?;
    let limit = prefs.batch_limit(app.config.max_batch);
    let command =
        Command::OpenStream { ispb, now_ms: now_ms(), max_batch: limit, auto_create: app.config.auto_create() };
    let handout = expect_handout(app.propose(command).await?)?;
    let guard = app.activity.begin_advance(ispb, handout.stream)?;
    tracing::debug!(%ispb, stream = handout.stream, seqs = handout.seqs.len(), "stream opened");
    let position = position_of(&app, ispb, &handout);
    deliver_or_wait(&app, position, handout.seqs, prefs, limit, guard).await
}

/// `GET /api/v1/out/{ispb}/stream/{token}`: confirms the outstanding batch and reads
/// the next one; with the previous token, repeats the outstanding batch.
pub async fn next(
    State(app): State<AppState>,
    CursorSegments { ispb, token }: CursorSegments,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let prefs = ReadPrefs::from_headers(&headers)?;
    let claims = verify_token(&app, &ispb, &token)?;
    app.activity.touch(ispb, claims.stream);
    let Some(state) = current_stream_state(&app, &ispb, &claims).await? else {
        return Err(ApiError::StreamClosed);
    };
    let mut position = state.position;
    if claims.generation + 1 == position.generation {
        // The previous token: the client lost our answer; send the same batch again.
        let messages = read_messages(&app, &ispb, &state.batch)?;
        return read_response(&app, &position, &messages, prefs);
    }
    if claims.generation < position.generation {
        return Err(ApiError::StaleCursor);
    }
    if claims.generation > position.generation {
        return Err(ApiError::InvalidCursor("token names a read the stream never made"));
    }
    let guard = app.activity.begin_advance(ispb, claims.stream)?;
    position.generation = claims.generation;
    let limit = prefs.batch_limit(app.config.max_batch);
    deliver_or_wait(&app, position, Vec::new(), prefs, limit, guard).await
}

/// `DELETE /api/v1/out/{ispb}/stream/{token}`: closes the stream; the current token
/// confirms its batch, the previous one returns it for redelivery.
pub async fn close(
    State(app): State<AppState>,
    CursorSegments { ispb, token }: CursorSegments,
) -> Result<Response, ApiError> {
    let claims = verify_token(&app, &ispb, &token)?;
    let command = Command::CloseStream { ispb, stream: claims.stream, generation: claims.generation };
    match app.propose(command).await? {
        CommandResult::Closed { confirmed, redelivered } => {
            app.activity.forget(ispb, claims.stream);
            tracing::debug!(%ispb, stream = claims.stream, confirmed, redelivered, "stream closed");
            Ok(StatusCode::OK.into_response())
        }
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(unexpected(&other)),
    }
}

/// Hands out `seqs` if any; otherwise proposes reads whenever one can progress and
/// waits for the ISPB's notification in between, up to the long-poll deadline.
async fn deliver_or_wait(
    app: &App,
    mut position: StreamPosition,
    seqs: Vec<Seq>,
    prefs: ReadPrefs,
    limit: u32,
    _guard: AdvanceGuard,
) -> Result<Response, ApiError> {
    if !seqs.is_empty() {
        let messages = read_messages(app, &position.ispb, &seqs)?;
        return read_response(app, &position, &messages, prefs);
    }
    let deadline = long_poll_deadline(app.config.long_poll_wait);
    let ispb = position.ispb;
    loop {
        let mut wake = app.notifier.subscribe(&ispb);
        // A shard this node does not host must be proposed to: the proposal reports why not.
        let outlook = app
            .shards
            .read(&ispb, |m| m.read_outlook(&ispb, position.stream, position.generation))
            .unwrap_or(ReadOutlook::MUST_PROPOSE);
        let claim = app.claims.claim(ispb, outlook.available, u64::from(limit));
        if outlook.must_propose || claim.is_some() {
            let command = Command::Pull {
                ispb,
                stream: position.stream,
                generation: position.generation,
                max_batch: limit,
                now_ms: now_ms(),
            };
            let handout = expect_handout(app.propose(command).await?)?;
            if let Some(mut claim) = claim {
                claim.handed(handout.seqs.len());
            }
            position = position_of(app, ispb, &handout);
            if !handout.seqs.is_empty() {
                let messages = read_messages(app, &ispb, &handout.seqs)?;
                return read_response(app, &position, &messages, prefs);
            }
        }
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() || Instant::now() >= deadline {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
            () = app.shutdown.cancelled() => break,
        }
    }
    read_response(app, &position, &[], prefs)
}

/// When a long poll gives up: between 90 % and 100 % of `wait` from now (SPEC.md:
/// "up to" the wait), so that polls opened together — by a client fleet, after a
/// restart or a failover — do not all expire, answer and come back in one instant.
fn long_poll_deadline(wait: Duration) -> Instant {
    let early = (wait / 10).mul_f64(rand::random::<f64>());
    Instant::now() + wait - early
}

/// The stream's state, caught up with the shard when the local state looks behind
/// the token: a token names a stream this node has not seen open, or a read it has
/// not applied yet, when a new leader is still applying what the previous one
/// committed. Only a state that is still behind after the barrier is the client's
/// error.
async fn current_stream_state(
    app: &App,
    ispb: &Ispb,
    claims: &TokenClaims,
) -> Result<Option<StreamSnapshot>, ApiError> {
    let state = stream_state(app, ispb, claims.stream);
    if state.as_ref().is_some_and(|s| claims.generation <= s.position.generation) {
        return Ok(state);
    }
    app.catch_up(ispb).await?;
    Ok(stream_state(app, ispb, claims.stream))
}

/// A stream's state as the applied log has it.
struct StreamSnapshot {
    position: StreamPosition,
    batch: Vec<Seq>,
}

fn stream_state(app: &App, ispb: &Ispb, stream: u64) -> Option<StreamSnapshot> {
    let shard = app.shards.shard_for(ispb);
    app.shards
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
                    open_streams: tenant.open_streams(),
                    max_streams: tenant.settings.max_streams,
                    kind: StreamKind::Live,
                },
                batch: s.batch.clone(),
            })
        })
        .flatten()
}

fn position_of(app: &App, ispb: Ispb, handout: &Handout) -> StreamPosition {
    StreamPosition {
        ispb,
        shard: app.shards.shard_for(&ispb),
        stream: handout.stream,
        generation: handout.generation,
        handed_at_ms: handout.handed_at_ms,
        open_streams: handout.open_streams,
        max_streams: handout.max_streams,
        kind: StreamKind::Live,
    }
}

fn verify_token(app: &App, ispb: &Ispb, token: &str) -> Result<TokenClaims, ApiError> {
    let claims = app.keys.verify_for(token, ispb.as_bytes()).inspect_err(|e| {
        tracing::warn!(%ispb, reason = %e, security_event = true, "invalid cursor presented");
    })?;
    if claims.shard != app.shards.shard_for(ispb) {
        return Err(ApiError::InvalidCursor("token names another shard"));
    }
    if claims.kind != StreamKind::Live {
        return Err(ApiError::InvalidCursor("replay tokens are not served here"));
    }
    Ok(claims)
}

fn read_messages(app: &App, ispb: &Ispb, seqs: &[Seq]) -> Result<Vec<storage::StoredMessage>, ApiError> {
    let messages =
        app.store.read_messages(ispb, seqs).map_err(|e| ApiError::Internal(format!("read messages: {e}")))?;
    if messages.len() != seqs.len() {
        return Err(ApiError::Internal(format!(
            "{} of {} handed-out messages missing",
            seqs.len() - messages.len(),
            seqs.len()
        )));
    }
    Ok(messages)
}

fn expect_handout(result: CommandResult) -> Result<Handout, ApiError> {
    match result {
        CommandResult::Handout(handout) => Ok(handout),
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(result: &CommandResult) -> ApiError {
    ApiError::Internal(format!("unexpected command result {result:?}"))
}
