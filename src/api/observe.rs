//! `observe`: counts every routed request by route and status,
//! times it by route and outcome (`messages`, `empty` for a 204, `error`, `ok`),
//! counts error answers by problem code and throttling answers by cause, and counts
//! answered pulls by ISPB (`crate::metrics::Metrics`), from the request's context
//! and its answer.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;

use crate::api::RenderedProblem;
use crate::api::forward::Relayed;
use crate::app::App;
use crate::context::{RequestContext, Route};
use crate::metrics::{LatencyLabels, ProblemLabels, RequestLabels, ThrottleLabels};

/// Counts and times the request that started at `started` and got `response`.
pub fn record(app: &App, ctx: &RequestContext, started: Instant, response: &Response) {
    let (route, ispb) = (ctx.route, ctx.ispb);
    let status = response.status();
    let metrics = &app.metrics;
    metrics.requests.get_or_create(&RequestLabels { route: route.name(), status: status.as_u16() }).inc();
    let pull = route == Route::StreamStart || route == Route::StreamNext;
    let outcome = match status {
        StatusCode::OK if pull => "messages",
        StatusCode::NO_CONTENT => "empty",
        s if s.is_client_error() || s.is_server_error() => "error",
        _ => "ok",
    };
    let served_here = response.extensions().get::<Relayed>().is_none();
    if let (true, true, "messages" | "empty", Some(ispb)) = (pull, served_here, outcome, ispb) {
        metrics.pulls.count(ispb);
    }
    metrics
        .latency
        .get_or_create(&LatencyLabels { route: route.name(), outcome })
        .observe(started.elapsed().as_secs_f64());
    if let Some(RenderedProblem(problem)) = response.extensions().get::<RenderedProblem>() {
        metrics.problems.get_or_create(&ProblemLabels { code: problem.code() }).inc();
        if let Some(cause) = problem.throttle_cause() {
            metrics.throttled.get_or_create(&ThrottleLabels { cause }).inc();
        }
    }
}
