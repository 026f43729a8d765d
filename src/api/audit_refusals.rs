//! `audit_refusals`: turns refused requests of an ISPB into
//! access events of its audit chain — 403 `forbidden` (`access.forbidden`), 401
//! (`access.unauthenticated`), an invalid `PI-Pull-Next` (`access.invalid_token`) —
//! rate-bounded by `audit::AccessEvents`. It runs on the node that produced the
//! refusal: the entry node for authorization, the serving node for tokens (a
//! relayed answer carries no `RenderedProblem`, so nothing is recorded twice). The
//! event is committed through the shard's leader: proposed here when this node
//! leads, else sent to the leader's peer listener (`POST /peer/v1/audit`). When the
//! ISPB has no tenant the leader moves the event to the cluster chain
//! (`AccessEvents::onto_cluster_chain`). `record_cluster_action` serves the cluster admin calls.

use axum::response::Response;
use storage::audit::AuditAction;
use storage::{Command, CommandResult};

use crate::api::{ApiError, RenderedProblem, forward};
use crate::app::{App, AppState};
use crate::context::RequestContext;

/// Peer route taking one `Audit` command (JSON) for a shard this node leads.
pub const AUDIT_RELAY_PATH: &str = "/peer/v1/audit";

/// Records the refusal in `response`, if it is an access event.
pub fn record(app: &AppState, ctx: &RequestContext, response: &Response) {
    let Some(RenderedProblem(error)) = response.extensions().get::<RenderedProblem>() else { return };
    let Some(ispb) = ctx.ispb else { return };
    let event = match error {
        ApiError::Forbidden(why) => Some((AuditAction::Forbidden, why.clone())),
        ApiError::Unauthorized(why) => Some((AuditAction::Unauthenticated, (*why).to_owned())),
        ApiError::InvalidCursor(why) => Some((AuditAction::InvalidToken, (*why).to_owned())),
        _ => None,
    };
    if let Some((action, outcome)) = event
        && let Some(command) = app.access_events.admit(ctx, ispb, action, &outcome)
    {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(error) = commit(&app, command).await {
                tracing::warn!(%error, "access event not recorded in the audit chain");
            }
        });
    }
}

/// Records an operator's cluster-wide action (membership, backup, leader transfer)
/// in the cluster's audit chain, before the answer is sent; a failure to record is
/// logged.
pub(crate) async fn record_cluster_action(app: &App, ctx: &RequestContext, action: AuditAction, outcome: String) {
    let event = Command::Audit {
        ispb: storage::Ispb::CLUSTER,
        now_ms: wire::clock::now_ms(),
        origin: ctx.origin(),
        action,
        outcome,
    };
    if let Err(error) = commit(app, event).await {
        tracing::error!(%error, action = action.name(), "admin action not recorded in the cluster's audit chain");
    }
}

/// Commits an `Audit` command through its chain's shard leader: proposed here when
/// this node leads, else relayed to the leader (which moves an event of an ISPB
/// without a tenant to the cluster chain itself).
pub(crate) async fn commit(app: &App, command: Command) -> Result<(), String> {
    let shard = app.shards.shard_for(command.ispb());
    if app.shards.is_leader(shard) || app.shards.cluster().nodes.len() <= 1 {
        return Box::pin(propose_here(app, command)).await.map_err(|e| e.to_string());
    }
    relay(app, shard, &command).await
}

/// Proposes an `Audit` command on this node (its shard's leader); one that found no
/// tenant goes on to the cluster chain.
async fn propose_here(app: &App, command: Command) -> Result<(), ApiError> {
    let fallback = app.access_events.onto_cluster_chain(command.clone());
    let recorded = app.pull.shards().propose(command).await?;
    if let (CommandResult::Audited(false), Some(cluster_event)) = (recorded, fallback) {
        commit(app, cluster_event).await.map_err(|e| ApiError::Internal(format!("cluster chain: {e}")))?;
    }
    Ok(())
}

async fn relay(app: &App, shard: u32, command: &Command) -> Result<(), String> {
    let peer = forward::target_node(app, shard, 0).map_err(|e| e.to_string())?;
    let url = format!("{}://{peer}{AUDIT_RELAY_PATH}", app.peer_scheme);
    let answer = app
        .peer_client
        .post(url)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(command).map_err(|e| e.to_string())?)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if answer.status().is_success() { Ok(()) } else { Err(format!("leader answered {}", answer.status())) }
}

/// The peer handler of `AUDIT_RELAY_PATH`: proposes an `Audit` command (and no other).
pub async fn relayed(app: &App, body: &[u8]) -> Result<(), ApiError> {
    let command: Command =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody(format!("audit event: {e}")))?;
    if !matches!(command, Command::Audit { .. }) {
        return Err(ApiError::InvalidBody("only access events are relayed".into()));
    }
    Box::pin(propose_here(app, command)).await
}
