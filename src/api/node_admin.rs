//! Administration of the node that answers (not forwarded): `POST
//! /internal/v1/node/backup` with `{"out": "/abs/dir"}` writes an online backup of
//! this node into that new directory on its file system (`backup::take`) and
//! answers 201 with the manifest's summary (the node's key files are in it: see
//! `backup`). 400 for a relative path, an existing
//! directory or a missing parent. Demands the `operator` role; every call is
//! recorded in the cluster's audit chain (`node.backup`).

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use storage::audit::AuditAction;

use crate::api::json_body::json_object;
use crate::api::{ApiError, audit_refusals};
use crate::app::AppState;
use crate::backup::{self, Manifest};
use crate::context::RequestContext;

/// The body of a backup call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// A new directory (absolute path on the node) to write the backup into.
    pub out: PathBuf,
}

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTaken {
    pub out: PathBuf,
    pub node_id: u64,
    pub created_at: String,
    pub files: usize,
    pub bytes: u64,
    pub shards: Vec<raft::ShardBackup>,
}

impl BackupTaken {
    fn of(out: PathBuf, manifest: Manifest) -> BackupTaken {
        BackupTaken {
            out,
            node_id: manifest.node_id,
            created_at: manifest.created_at.clone(),
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            shards: manifest.shard_state,
        }
    }
}

/// `POST /internal/v1/node/backup`.
pub async fn backup(
    State(app): State<AppState>,
    ctx: RequestContext,
    body: Bytes,
) -> Result<(StatusCode, Json<BackupTaken>), ApiError> {
    let taken = take(&app, &body).await;
    let outcome = match &taken {
        Ok(t) => format!("node {}: {} files, {} bytes into {}", t.node_id, t.files, t.bytes, t.out.display()),
        Err(error) => format!("node {}: refused: {error}", app.config.node_id),
    };
    audit_refusals::record_cluster_action(&app, &ctx, AuditAction::NodeBackup, outcome).await;
    Ok((StatusCode::CREATED, Json(taken?)))
}

async fn take(app: &AppState, body: &[u8]) -> Result<BackupTaken, ApiError> {
    let request: BackupRequest = json_object(body, "backup request")?;
    let app = app.clone();
    let out = request.out.clone();
    let started = std::time::Instant::now();
    let manifest = tokio::task::spawn_blocking(move || backup::take(&app.shards, &app.config, &out))
        .await
        .map_err(|e| ApiError::Internal(format!("backup task: {e}")))??;
    tracing::info!(out = %request.out.display(), files = manifest.files.len(), bytes = manifest.total_bytes(),
        elapsed_ms = started.elapsed().as_millis() as u64, "backup taken");
    Ok(BackupTaken::of(request.out, manifest))
}
