//! Operator actions on one tenant (SPEC.md §4), on the internal listener, role
//! `operator`, each a Raft command recorded in the tenant's audit chain with its
//! caller:
//! - `DELETE /internal/v1/tenants/{ispb}/streams/{stream}` (operator) — force-closes
//!   an open stream: its outstanding batch goes back for redelivery (a `CloseStream`
//!   with the previous generation, recorded with the operator as its actor); the
//!   PSP's token for it then gets 410 `streamClosed`. 404 for a stream that is not
//!   open; 409 `streamBusy` when the stream moved on meanwhile (retry).
//! - `POST /internal/v1/tenants/{ispb}/cursor` (operator) with
//!   `{"to_seq": n, "reason": "…"}` — moves the watermark back to `n` (everything
//!   from `n` is delivered again) or forward past `n - 1` (skipped messages count as
//!   confirmed; only with a reason). Every open stream is closed (their tokens get
//!   410), so no outstanding batch survives. 400 for a seq already purged or past
//!   the next one.
//! - `DELETE /internal/v1/tenants/{ispb}` with an optional JSON body
//!   `{"force": true, "reason": "…"}` — deletes the tenant: refused (400) while it
//!   holds unconfirmed messages or open streams unless forced with a reason, and
//!   always while under legal hold; its messages and dedupe keys are deleted, its
//!   streams closed (their tokens get 410), and it disappears from list and show.
//!   Its audit chain stays (exported and sealed as before), and a tenant created
//!   again under the ISPB continues its chain and its seqs.
//! - `POST /internal/v1/tenants/{ispb}/replays` with `{"from_seq": n}` or
//!   `{"from_time": "2026-12-03T10:00:00.000Z"}` — opens a compliance replay stream
//!   (`pull::replay`) up to the log's end now, outside the live stream slots (at
//!   most `limits.max_replay_streams`, else 429 `tooManyStreams`); answers 201 with
//!   its first `pull_next` path for the PSP. 400 for a seq already purged or past
//!   the next one, or a body naming neither or both starts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storage::{Command, CommandResult};
use wire::clock::now_ms;

use crate::api::ApiError;
use crate::api::json_body::json_object;
use crate::api::path::IspbSegment;
use crate::app::AppState;
use crate::context::RequestContext;
use crate::pull::ReplayFrom;

/// What a force-close did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClosed {
    pub stream: u64,
    pub redelivered: usize,
    pub open_streams: u32,
}

/// `DELETE /internal/v1/tenants/{ispb}/streams/{stream}`.
pub async fn close_stream(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    uri: axum::http::Uri,
) -> Result<Json<StreamClosed>, ApiError> {
    let segment = uri.path().rsplit('/').next().unwrap_or_default();
    let stream: u64 =
        segment.parse().map_err(|_| ApiError::InvalidBody(format!("stream id {segment:?} is not a number")))?;
    app.pull.shards().catch_up(&ispb).await?;
    let generation = app
        .shards
        .read(&ispb, |machine| machine.tenant(&ispb).and_then(|t| t.streams.get(&stream).map(|s| s.generation)))
        .flatten()
        .ok_or(ApiError::NotFound)?;
    // The previous generation returns the batch; a stream that never handed out a
    // batch (generation 0) holds nothing to return.
    let command = Command::CloseStream {
        ispb,
        stream,
        generation: generation.saturating_sub(1),
        now_ms: now_ms(),
        origin: ctx.origin(),
    };
    match app.pull.shards().propose(command).await? {
        CommandResult::Closed { redelivered, open_streams, .. } => {
            Ok(Json(StreamClosed { stream, redelivered, open_streams }))
        }
        CommandResult::Rejected(storage::Rejection::StreamClosed) => Err(ApiError::NotFound),
        CommandResult::Rejected(_) => Err(ApiError::StreamBusy),
        other => Err(ApiError::Internal(format!("force-close answered {other:?}"))),
    }
}

/// The body of `POST /internal/v1/tenants/{ispb}/cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorMove {
    pub to_seq: u64,
    #[serde(default)]
    pub reason: String,
}

/// What a cursor move did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorMoved {
    pub from_seq: u64,
    pub to_seq: u64,
    pub closed_streams: usize,
}

/// `POST /internal/v1/tenants/{ispb}/cursor`.
pub async fn move_cursor(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    body: Bytes,
) -> Result<Json<CursorMoved>, ApiError> {
    let request: CursorMove = json_object(&body, "cursor move")?;
    let command = Command::MoveCursor {
        ispb,
        to: request.to_seq,
        now_ms: now_ms(),
        origin: ctx.origin(),
        reason: request.reason,
    };
    match app.pull.shards().propose(command).await? {
        CommandResult::CursorMoved { from, to, closed_streams } => {
            Ok(Json(CursorMoved { from_seq: from, to_seq: to, closed_streams }))
        }
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(ApiError::Internal(format!("cursor move answered {other:?}"))),
    }
}

/// The body of `DELETE /internal/v1/tenants/{ispb}` (empty: not forced).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDelete {
    /// Delete even with unconfirmed messages or open streams (they are discarded).
    #[serde(default)]
    pub force: bool,
    /// Why; required with `force`, recorded in the audit chain.
    #[serde(default)]
    pub reason: String,
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDeleted {
    pub ispb: String,
    pub discarded: u64,
    pub closed_streams: usize,
}

/// `DELETE /internal/v1/tenants/{ispb}`.
pub async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    body: Bytes,
) -> Result<Json<TenantDeleted>, ApiError> {
    let request: TenantDelete = if body.iter().all(u8::is_ascii_whitespace) {
        TenantDelete::default()
    } else {
        json_object(&body, "tenant delete")?
    };
    let command = Command::DeleteTenant {
        ispb,
        force: request.force,
        reason: request.reason,
        now_ms: now_ms(),
        origin: ctx.origin(),
    };
    match app.pull.shards().propose(command).await? {
        CommandResult::TenantDeleted { discarded, closed_streams } => {
            Ok(Json(TenantDeleted { ispb: ispb.to_string(), discarded, closed_streams }))
        }
        CommandResult::Rejected(rejection) => Err(rejection.into()),
        other => Err(ApiError::Internal(format!("tenant delete answered {other:?}"))),
    }
}

/// The body of `POST /internal/v1/tenants/{ispb}/replays`: one of the two starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayOpen {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    /// UTC `YYYY-MM-DDThh:mm:ss[.sss]Z`: from the first message enqueued at or after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<String>,
}

/// A replay just opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayOpenedView {
    pub ispb: String,
    pub replay: u64,
    pub from_seq: u64,
    /// The last seq it replays (`from_seq - 1` for an empty range).
    pub to_seq: u64,
    pub expires_at: String,
    pub open_replays: u32,
    pub max_replays: u32,
    /// The path the PSP GETs (with its own credentials) to read the replay.
    pub pull_next: String,
}

/// `POST /internal/v1/tenants/{ispb}/replays`.
pub async fn open_replay(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<ReplayOpenedView>), ApiError> {
    let request: ReplayOpen = json_object(&body, "replay")?;
    let from = match (request.from_seq, request.from_time) {
        (Some(seq), None) => ReplayFrom::Seq(seq),
        (None, Some(text)) => ReplayFrom::Time(wire::clock::parse_utc_ms(&text).ok_or_else(|| {
            ApiError::InvalidBody(format!("from_time {text:?} is not UTC YYYY-MM-DDThh:mm:ss[.sss]Z"))
        })?),
        _ => return Err(ApiError::InvalidBody("a replay starts from_seq or from_time (one of them)".into())),
    };
    let opened = app.pull.open_replay(&ctx, ispb, from).await?;
    let replay = &opened.replay;
    let view = ReplayOpenedView {
        ispb: ispb.to_string(),
        replay: replay.id,
        from_seq: replay.from,
        to_seq: replay.end.saturating_sub(1),
        expires_at: wire::clock::format_utc_ms(replay.expires_at_ms),
        open_replays: opened.slots.open,
        max_replays: opened.slots.limit,
        pull_next: opened.pull_next,
    };
    Ok((axum::http::StatusCode::CREATED, Json(view)))
}
