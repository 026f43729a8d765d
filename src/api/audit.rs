//! The audit routes of the internal listener (role `auditor`), served by the leader
//! of the ISPB's shard (forwarded like appends):
//! - `GET /internal/v1/out/{ispb}/audit?from_ms=&to_ms=&unsealed=true` — the chain as
//!   JSON lines (`application/x-ndjson`): records and the checkpoints sealing them,
//!   ending at the newest checkpoint unless `unsealed=true`.
//! - `POST /internal/v1/out/{ispb}/audit/seal` — a checkpoint of the newest record
//!   now, so an export can end on it; answers `{"sealed": bool, "upto": n}`.
//! - `GET /internal/v1/cluster/audit`, `POST /internal/v1/cluster/audit/seal` — the
//!   same for the cluster's own chain (`Ispb::CLUSTER`: membership changes, access
//!   events of ISPBs without a tenant).

use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use storage::audit::ExportRange;

use crate::api::ApiError;
use crate::api::path::IspbSegment;
use crate::app::AppState;

/// `GET /internal/v1/out/{ispb}/audit`.
pub async fn export(
    State(app): State<AppState>,
    IspbSegment(ispb): IspbSegment,
    uri: Uri,
) -> Result<Response, ApiError> {
    let range = range_of(uri.query().unwrap_or_default())?;
    app.pull.shards().catch_up(&ispb).await?;
    let head = app
        .shards
        .read(&ispb, |m| m.record(&ispb).map(|t| t.audit.clone()))
        .flatten()
        .ok_or(ApiError::TenantNotFound)?;
    let store = app.store.clone();
    let entries = tokio::task::spawn_blocking(move || store.audit_export(&ispb, &head, range))
        .await
        .map_err(|e| ApiError::Internal(format!("audit export task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("audit export: {e}")))?;
    let mut body = Vec::with_capacity(entries.len() * 256);
    for entry in &entries {
        serde_json::to_writer(&mut body, entry).map_err(|e| ApiError::Internal(format!("audit export: {e}")))?;
        body.push(b'\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `POST /internal/v1/out/{ispb}/audit/seal`.
pub async fn seal(State(app): State<AppState>, IspbSegment(ispb): IspbSegment) -> Result<Response, ApiError> {
    let sealed = app.sealer.seal_now(ispb).await;
    let upto = app
        .shards
        .read(&ispb, |m| m.record(&ispb).map(|t| t.audit.sealed))
        .flatten()
        .ok_or(ApiError::TenantNotFound)?;
    Ok(axum::Json(serde_json::json!({ "sealed": sealed, "upto": upto })).into_response())
}

/// The export range of a query string: `from_ms`, `to_ms` (epoch ms), `unsealed`.
fn range_of(query: &str) -> Result<ExportRange, ApiError> {
    let mut range = ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: false };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number =
            || value.parse::<u64>().map_err(|_| ApiError::InvalidBody(format!("{name} must be epoch milliseconds")));
        match name {
            "from_ms" => range.from_ms = number()?,
            "to_ms" => range.to_ms = number()?,
            "unsealed" => {
                range.include_unsealed = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::InvalidBody("unsealed must be true or false".into())),
                }
            }
            other => return Err(ApiError::InvalidBody(format!("unknown query parameter {other}"))),
        }
    }
    if range.from_ms > range.to_ms {
        return Err(ApiError::InvalidBody("from_ms is after to_ms".into()));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_takes_epoch_millis_and_a_strict_boolean() {
        let range = range_of("from_ms=5&to_ms=9&unsealed=true").expect("valid");
        assert_eq!((range.from_ms, range.to_ms, range.include_unsealed), (5, 9, true));
        assert!(!range_of("unsealed=false").expect("valid").include_unsealed);
        for bad in ["unsealed=null", "unsealed=", "unsealed=1", "from_ms=-1", "to_ms=x", "from_ms=9&to_ms=5", "limit=3"]
        {
            assert!(matches!(range_of(bad), Err(ApiError::InvalidBody(_))), "{bad}");
        }
    }
}
