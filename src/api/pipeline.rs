//! `pipeline`: the per-request policy of the public and internal routers, as one
//! middleware that runs its stages in order — one boxed future and one service clone
//! per request instead of one per stage:
//!
//! 1. `attach` — the request's context and its span (the rest runs inside it);
//! 2. `authorize` — may the caller make it;
//! 3. on routes that serve a shard (`Route::serves_a_shard`): `shed` (admitted into
//!    the in-flight count or 503), then `forward::to_leader` (serve here or relay to
//!    the shard leader), then, on the node that serves, `rate_limit` on the public
//!    router (the ISPB's token bucket) and `shed::admit_append` for an append (the
//!    appends served at once, or 503);
//! 4. the handler;
//!
//! and on the way out, whatever the stage that answered: `audit_refusals` (refusals of
//! an ISPB into its audit chain), `observe` (metrics), the echoed `X-Request-Id`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::api::attach::{self, Side};
use crate::api::forward::{self, Served};
use crate::api::{audit_refusals, authorize, observe, rate_limit, shed};
use crate::app::{App, AppState};
use crate::context::{RequestContext, Route};

/// Middleware of the public router's routes.
pub async fn public(State(app): State<AppState>, request: Request, next: Next) -> Response {
    run(&app, Side::Public, request, next).await
}

/// Middleware of the internal router's routes.
pub async fn internal(State(app): State<AppState>, request: Request, next: Next) -> Response {
    run(&app, Side::Internal, request, next).await
}

async fn run(app: &AppState, side: Side, mut request: Request, next: Next) -> Response {
    let (ctx, span) = attach::context(app, side, &request);
    request.extensions_mut().insert(ctx.clone());
    let handled = async {
        let started = Instant::now();
        let response = serve(app, side, &ctx, request, next).await;
        audit_refusals::record(app, &ctx, &response);
        observe::record(app, &ctx, started, &response);
        response
    };
    let mut response = handled.instrument(span).await;
    attach::echo_request_id(&ctx, &mut response);
    response
}

/// The stages that decide whether and where the request is served, then the handler.
async fn serve(app: &App, side: Side, ctx: &RequestContext, request: Request, next: Next) -> Response {
    if let Err(refusal) = authorize::check(app, ctx) {
        return refusal.into_response();
    }
    if !ctx.route.serves_a_shard() {
        return next.run(request).await;
    }
    let _working = match shed::admit(app, ctx.route) {
        Ok(working) => working,
        Err(shed) => return shed.into_response(),
    };
    let request = match forward::to_leader(app, request).await {
        Served::Here(request) => request,
        Served::Elsewhere(answer) => return answer,
    };
    if side == Side::Internal {
        let _appending = match ctx.route {
            Route::Append => match shed::admit_append(app) {
                Ok(appending) => Some(appending),
                Err(shed) => return shed.into_response(),
            },
            _ => None,
        };
        return next.run(request).await;
    }
    rate_limit::serve(app, ctx, request, next).await
}
