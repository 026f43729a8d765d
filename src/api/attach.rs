//! `attach`: the middleware that builds each request's `RequestContext` — request id
//! (the client's `X-Request-Id`, the forwarding node's, or a new one), route, identity
//! and ISPB — and runs the rest of the request inside a `request` span carrying them;
//! and the extractor that hands the context to a handler.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use storage::Ispb;
use tracing::Instrument;

use crate::api::ApiError;
use crate::api::path::ispb_of;
use crate::app::AppState;
use crate::context::{Identity, RequestContext, Route, next_request_id};

/// Request header a client (or a load balancer) may name its request with.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

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

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<RequestContext>()
            .ok_or_else(|| ApiError::Internal("route served without a request context".into()))
    }
}
