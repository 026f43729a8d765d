//! Tenant administration on the internal listener (SPEC.md §4), JSON:
//! - `GET /internal/v1/tenants` (role operator or auditor) — every tenant of the
//!   shards this node hosts: ISPB, backlog, open streams, paused; `unhosted_shards`
//!   names the shards whose tenants this node cannot see (ask a node hosting them).
//! - `GET /internal/v1/tenants/{ispb}` (operator or auditor) — one tenant: settings,
//!   backlog, oldest unconfirmed age, watermark, next seq, open streams with their
//!   age and outstanding batch; served by the shard's leader.
//! - `PUT /internal/v1/tenants/{ispb}` (operator) — creates the tenant (201) or
//!   changes its settings (200): any of `max_streams` (1–6), `max_backlog`,
//!   `retention_days` (or `retention_secs`, at least 60), `rate_per_sec`,
//!   `rate_burst`, `paused`, `legal_hold`
//!   (`{"on": true, "reason": "…"}` stops every retention purge of the tenant until
//!   `{"on": false}`; a hold needs a reason); what is left out
//!   keeps its value (for a new tenant: the `[tenants]` defaults). A paused tenant's
//!   pulls get 503 with `Retry-After`; producers may still append. The change is an
//!   `UpsertTenant` command, recorded in the tenant's audit chain with its caller.
//!
//! Stream force-close, cursor moves and tenant deletion are in `tenant_actions`.

use std::ops::RangeInclusive;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use storage::{Command, CommandResult, Ispb, TenantSettings, TenantState};
use wire::clock::now_ms;

use crate::api::ApiError;
use crate::api::json_body::json_object;
use crate::api::path::IspbSegment;
use crate::app::{App, AppState};
use crate::context::RequestContext;

/// The body of `PUT /internal/v1/tenants/{ispb}`: the settings to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backlog: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u64>,
    /// Retention to the second (at least 60), instead of `retention_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<LegalHold>,
}

/// Putting a legal hold on (with its reason) or lifting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHold {
    pub on: bool,
    #[serde(default)]
    pub reason: String,
}

/// A tenant's settings as the admin API shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub max_streams: u32,
    pub max_backlog: u64,
    pub retention_days: u64,
    /// The retention to the second (`retention_days` rounds it down).
    pub retention_secs: u64,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub paused: bool,
    /// The reason of the legal hold in force, if any.
    pub legal_hold: Option<String>,
}

/// One open stream of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamView {
    pub id: u64,
    pub age_ms: u64,
    /// Messages handed out and not yet confirmed.
    pub outstanding: usize,
}

/// `GET /internal/v1/tenants/{ispb}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantView {
    pub ispb: Ispb,
    pub settings: SettingsView,
    pub backlog: u64,
    pub oldest_unconfirmed_age_ms: u64,
    pub watermark: u64,
    pub next_seq: u64,
    pub redelivery_pending: usize,
    pub streams: Vec<StreamView>,
}

/// One line of `GET /internal/v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSummary {
    pub ispb: Ispb,
    pub backlog: u64,
    pub open_streams: usize,
    pub paused: bool,
}

/// `GET /internal/v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantList {
    pub tenants: Vec<TenantSummary>,
    /// Shards this node does not host: their tenants are not listed here.
    pub unhosted_shards: Vec<u32>,
}

/// `GET /internal/v1/tenants`.
pub async fn list(State(app): State<AppState>) -> Json<TenantList> {
    let shards = &app.shards;
    let mut tenants = Vec::new();
    for machine in shards.hosted_shards().filter_map(|shard| shards.machine(shard)) {
        let machine = machine.read();
        tenants.extend(machine.tenants().filter(|t| !t.ispb.is_cluster()).map(|t| TenantSummary {
            ispb: t.ispb,
            backlog: t.backlog(),
            open_streams: t.streams.len(),
            paused: t.settings.paused,
        }));
    }
    tenants.sort_by_key(|t| t.ispb);
    let unhosted_shards = (0..shards.shard_count()).filter(|s| !shards.hosts(*s)).collect();
    Json(TenantList { tenants, unhosted_shards })
}

/// `GET /internal/v1/tenants/{ispb}`.
pub async fn show(State(app): State<AppState>, IspbSegment(ispb): IspbSegment) -> Result<Json<TenantView>, ApiError> {
    app.pull.shards().catch_up(&ispb).await?;
    let tenant = current(&app, &ispb).ok_or(ApiError::TenantNotFound)?;
    Ok(Json(view(&app, &tenant)))
}

/// `PUT /internal/v1/tenants/{ispb}`.
pub async fn set(
    State(app): State<AppState>,
    ctx: RequestContext,
    IspbSegment(ispb): IspbSegment,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update: TenantUpdate = json_object(&body, "tenant settings")?;
    app.pull.shards().catch_up(&ispb).await?;
    let existing = current(&app, &ispb);
    let base = existing.as_ref().map_or_else(|| app.config.tenant_defaults.clone(), |t| t.settings.clone());
    let settings = apply(update, base)?;
    let command = Command::UpsertTenant { ispb, settings, now_ms: now_ms(), origin: ctx.origin() };
    match app.pull.shards().propose(command).await? {
        CommandResult::TenantUpserted => {}
        other => return Err(ApiError::Internal(format!("tenant upsert answered {other:?}"))),
    }
    let tenant = current(&app, &ispb).ok_or_else(|| ApiError::Internal("upserted tenant not applied".into()))?;
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(view(&app, &tenant))).into_response())
}

/// `update` over `base`, checked like the `[tenants]` section of the config.
fn apply(update: TenantUpdate, mut base: TenantSettings) -> Result<TenantSettings, ApiError> {
    if let Some(max_streams) =
        within(update.max_streams, 1..=6, "max_streams must be 1 to 6 (ICOM allows 6 streams per ISPB)")?
    {
        base.max_streams = max_streams;
    }
    if let Some(max_backlog) = within(update.max_backlog, 1..=u64::MAX, "max_backlog must be at least 1")? {
        base.max_backlog = max_backlog;
    }
    if update.retention_days.is_some() && update.retention_secs.is_some() {
        return Err(ApiError::InvalidBody("give retention_days or retention_secs, not both".into()));
    }
    if let Some(days) = within(update.retention_days, 1..=3650, "retention_days must be 1 to 3650")? {
        base.retention_secs = days * 86_400;
    }
    let most = 3650 * 86_400;
    if let Some(secs) = within(update.retention_secs, 60..=most, "retention_secs must be 60 to 315360000 (3650 days)")?
    {
        base.retention_secs = secs;
    }
    if let Some(rate) = within(update.rate_per_sec, 1..=u32::MAX, "rate_per_sec must be at least 1")? {
        base.rate_per_sec = rate;
    }
    if let Some(burst) = within(update.rate_burst, 1..=u32::MAX, "rate_burst must be at least 1")? {
        base.rate_burst = burst;
    }
    if let Some(paused) = update.paused {
        base.paused = paused;
    }
    match update.legal_hold {
        Some(LegalHold { on: true, reason }) if reason.trim().is_empty() => {
            return Err(ApiError::InvalidBody("a legal hold needs a reason".into()));
        }
        Some(LegalHold { on: true, reason }) => base.legal_hold = Some(reason.trim().to_owned()),
        Some(LegalHold { on: false, .. }) => base.legal_hold = None,
        None => {}
    }
    Ok(base)
}

/// `value`, when given, if it lies in `range`; else 400 with `message`.
fn within<T: PartialOrd>(value: Option<T>, range: RangeInclusive<T>, message: &str) -> Result<Option<T>, ApiError> {
    match value {
        Some(v) if !range.contains(&v) => Err(ApiError::InvalidBody(message.to_owned())),
        other => Ok(other),
    }
}

/// The applied state of `ispb`'s tenant on this node.
fn current(app: &App, ispb: &Ispb) -> Option<TenantState> {
    app.shards.read(ispb, |machine| machine.tenant(ispb).cloned()).flatten()
}

fn view(app: &App, tenant: &TenantState) -> TenantView {
    let now = now_ms();
    let oldest_unconfirmed_age_ms =
        app.store.oldest_unconfirmed_age_ms(&tenant.ispb, tenant.watermark, tenant.backlog(), now);
    let s = &tenant.settings;
    TenantView {
        ispb: tenant.ispb,
        settings: SettingsView {
            max_streams: s.max_streams,
            max_backlog: s.max_backlog,
            retention_days: s.retention_secs / 86_400,
            retention_secs: s.retention_secs,
            rate_per_sec: s.rate_per_sec,
            rate_burst: s.rate_burst,
            paused: s.paused,
            legal_hold: s.legal_hold.clone(),
        },
        backlog: tenant.backlog(),
        oldest_unconfirmed_age_ms,
        watermark: tenant.watermark,
        next_seq: tenant.next_seq,
        redelivery_pending: tenant.redeliver.len(),
        streams: tenant
            .streams
            .values()
            .map(|s| StreamView { id: s.id, age_ms: now.saturating_sub(s.opened_at_ms), outstanding: s.batch.len() })
            .collect(),
    }
}
