//! `rate_limit`: counts each request the node serves against its
//! ISPB's token bucket (`throttle::RateLimits`), answers 429 `rateLimited` with an
//! integer `Retry-After` over the limit, and puts `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` on every answer. It runs after
//! forwarding, so the shard leader counts a request once whichever node it entered.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::app::App;
use crate::context::RequestContext;
use crate::throttle::Rate;

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Takes one token from the ISPB's bucket, then runs the handler, or answers 429
/// `rateLimited` over the limit; either answer carries the `RateLimit-*` headers.
pub async fn serve(app: &App, ctx: &RequestContext, request: Request, next: Next) -> Response {
    let ispb = ctx.ispb.as_ref();
    let rate = ispb.and_then(|ispb| {
        app.shards
            .read(ispb, |machine| {
                machine.tenant(ispb).map(|t| Rate { per_sec: t.settings.rate_per_sec, burst: t.settings.rate_burst })
            })
            .flatten()
    });
    let verdict = app.rate_limits.check(ispb, rate);
    let mut response = match verdict.retry_after_secs {
        Some(retry_after_secs) => ApiError::RateLimited { retry_after_secs }.into_response(),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(verdict.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(verdict.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(verdict.reset_secs));
    response
}
