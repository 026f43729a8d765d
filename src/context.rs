//! `RequestContext`: who asks, for which ISPB, on which route, under which request
//! id — built once per request by the `attach` middleware of the public and internal
//! routers and handed to the domain services. It is the one place per-request policy
//! attaches: identity (client certificate or bearer token), authorization, rate
//! limits, audit records and metrics read it rather than each handler re-deriving
//! them. Every request runs inside a `request` span carrying its id, route and ISPB.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use storage::Ispb;
use tracing::Instrument;
use wire::paths;

use crate::api::ApiError;
use crate::api::path::ispb_of;
use crate::app::AppState;

/// Request header a client (or a load balancer) may name its request with.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// The routes of the public and internal API, as policy sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    StreamStart,
    StreamNext,
    StreamClose,
    Append,
    ClusterMembers,
    Healthz,
    Readyz,
    /// A path the routers matched by a template this list does not know.
    Other,
}

impl Route {
    /// The route of a request matched by the template `matched`.
    pub fn of(method: &Method, matched: &str) -> Route {
        match matched {
            paths::STREAM_START => Route::StreamStart,
            paths::STREAM_NEXT if method == Method::DELETE => Route::StreamClose,
            paths::STREAM_NEXT => Route::StreamNext,
            paths::APPEND => Route::Append,
            paths::CLUSTER_MEMBERS => Route::ClusterMembers,
            paths::HEALTHZ => Route::Healthz,
            paths::READYZ => Route::Readyz,
            _ => Route::Other,
        }
    }

    /// A stable name (logs, and later metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Route::StreamStart => "stream_start",
            Route::StreamNext => "stream_next",
            Route::StreamClose => "stream_close",
            Route::Append => "append",
            Route::ClusterMembers => "cluster_members",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Other => "other",
        }
    }
}

/// Who sent the request, as far as the listener could tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No credentials: plain HTTP listeners of the embedded default.
    Anonymous,
}

/// Everything policy needs to know about one request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The client's `X-Request-Id` (or the one a forwarding node passed on), else
    /// generated here: `{node}-{counter}` in hex.
    pub request_id: String,
    pub route: Route,
    pub identity: Identity,
    /// The ISPB of the path, when it has a valid one (an invalid one is refused by
    /// the handler's extractor with `invalidIspb`).
    pub ispb: Option<Ispb>,
}

/// A request id passed on by the node that forwarded the request (peer listener).
#[derive(Clone, Debug)]
pub struct ForwardedRequestId(pub String);

/// Middleware: builds the request's context and runs the rest inside its span.
pub async fn attach(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Route::Other, |matched| Route::of(request.method(), matched.as_str()));
    let request_id = client_request_id(&request).unwrap_or_else(|| next_request_id(app.config.node_id));
    let ispb = ispb_of(request.uri().path()).ok();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        route = route.name(),
        ispb = ispb.as_ref().map(Ispb::as_str),
        node = app.config.node_id,
    );
    request.extensions_mut().insert(RequestContext { request_id, route, identity: Identity::Anonymous, ispb });
    next.run(request).instrument(span).await
}

/// The request id the client or the forwarding node gave, if usable.
fn client_request_id(request: &Request) -> Option<String> {
    if let Some(ForwardedRequestId(id)) = request.extensions().get::<ForwardedRequestId>() {
        return Some(id.clone());
    }
    let text = request.headers().get(X_REQUEST_ID)?.to_str().ok()?.trim();
    let usable = !text.is_empty() && text.len() <= MAX_REQUEST_ID_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    usable.then(|| text.to_owned())
}

fn next_request_id(node_id: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{node_id:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<RequestContext>()
            .ok_or_else(|| ApiError::Internal("route served without a request context".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_told_apart_by_template_and_method() {
        assert_eq!(Route::of(&Method::GET, paths::STREAM_START), Route::StreamStart);
        assert_eq!(Route::of(&Method::GET, paths::STREAM_NEXT), Route::StreamNext);
        assert_eq!(Route::of(&Method::DELETE, paths::STREAM_NEXT), Route::StreamClose);
        assert_eq!(Route::of(&Method::POST, paths::APPEND), Route::Append);
        assert_eq!(Route::of(&Method::GET, "/somewhere/else"), Route::Other);
    }

    #[test]
    fn request_ids_are_unique_per_node() {
        let (a, b) = (next_request_id(3), next_request_id(3));
        assert_ne!(a, b);
        assert!(a.starts_with("3-"));
    }
}
