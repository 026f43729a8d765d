//! `attach`: builds each request's `RequestContext` — request id
//! (the client's `X-Request-Id`, the forwarding node's, or a new one), route, identity
//! and ISPB — and the `request` span the rest of the request runs in, carrying them,
//! the node and the ISPB's shard (the pull service records the stream); echoes the
//! request id in the answer's `X-Request-Id`; and the extractor that hands the
//! context to a handler.
//!
//! Identity: on the public listener, the verified client certificate and the name
//! the client mapping gives it; on the internal listener, the holder of the bearer
//! token (`Authorization: Bearer …`) or of the client certificate; on a request
//! forwarded by another node, the caller as that node named it.

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use storage::Ispb;
use tracing::Span;

use crate::api::ApiError;
use crate::api::forward::ForwardHops;
use crate::api::path::ispb_of;
use crate::app::App;
use crate::context::{Identity, RequestContext, Route, next_request_id};
use crate::listener::ConnectionInfo;

/// Request header a client (or a load balancer) may name its request with.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// A request id passed on by the node that forwarded the request (peer listener).
#[derive(Clone, Debug)]
pub struct ForwardedRequestId(pub String);

/// The caller of a forwarded request, as the forwarding node named it.
#[derive(Clone, Debug)]
pub struct ForwardedActor(pub String);

/// Which listener a request arrived on: it decides how the caller is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Public,
    Internal,
}

/// The request's context, and the `request` span the rest of it runs in.
pub fn context(app: &App, side: Side, request: &Request) -> (RequestContext, Span) {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Route::Other, |matched| Route::of(request.method(), matched.as_str()));
    let request_id = client_request_id(request).unwrap_or_else(|| next_request_id(app.config.node_id));
    let ispb = ispb_of(request.uri().path()).ok();
    let identity = identity_of(app, side, request);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        route = route.name(),
        ispb = ispb.as_ref().map(Ispb::as_str),
        shard = ispb.as_ref().map(|ispb| app.shards.shard_for(ispb)),
        stream = tracing::field::Empty,
        actor = %identity.actor(),
        node = app.config.node_id,
    );
    (RequestContext { request_id, route, identity, ispb }, span)
}

/// Echoes the request id in the answer's `X-Request-Id`.
pub fn echo_request_id(ctx: &RequestContext, response: &mut Response) {
    if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
        response.headers_mut().insert(X_REQUEST_ID, id);
    }
}

/// Who sent `request` (see the module docs).
fn identity_of(app: &App, side: Side, request: &Request) -> Identity {
    if request.extensions().get::<ForwardHops>().is_some() {
        let actor = request.extensions().get::<ForwardedActor>().map_or_else(|| "peer".to_owned(), |a| a.0.clone());
        return Identity::Forwarded { actor };
    }
    let certificate = request.extensions().get::<ConnectionInfo>().and_then(|c| c.client_certificate.clone());
    match side {
        Side::Public => match certificate {
            Some(certificate) => {
                let client = app.access.clients().client_name(&certificate).map(str::to_owned);
                Identity::Certificate { certificate, client }
            }
            None => Identity::Anonymous,
        },
        Side::Internal => {
            let credentials = app.access.credentials();
            if let Some(token) = bearer_token(request.headers()) {
                return credentials.by_token(token).cloned().map_or(Identity::UnknownToken, Identity::Principal);
            }
            match certificate {
                Some(certificate) => match credentials.by_certificate(&certificate) {
                    Some(principal) => Identity::Principal(principal.clone()),
                    None => Identity::Certificate { certificate, client: None },
                },
                None => Identity::Anonymous,
            }
        }
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
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
