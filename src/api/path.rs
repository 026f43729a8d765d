//! Path extractors that answer bad segments with the API's own problems: the
//! `{ispb}` and `{token}` segments are read raw from the URI (neither ever needs
//! percent-encoding), so an undecodable or encoded segment is an `invalidIspb` or
//! `invalidCursor`, never a framework error page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use storage::Ispb;

use crate::api::ApiError;

/// The `{ispb}` segment: the one after `/out/`.
pub struct IspbSegment(pub Ispb);

/// The `{ispb}` segment and the `{token}` (last) segment of a continuation route.
pub struct CursorSegments {
    pub ispb: Ispb,
    pub token: String,
}

impl<S: Send + Sync> FromRequestParts<S> for IspbSegment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        ispb_of(parts.uri.path()).map(IspbSegment)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CursorSegments {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let path = parts.uri.path();
        let ispb = ispb_of(path)?;
        let token = path.rsplit('/').next().unwrap_or_default().to_owned();
        Ok(CursorSegments { ispb, token })
    }
}

/// The ISPB of a request path: the segment after `/out/` (or `/tenants/` for the
/// tenant admin); `Ispb::CLUSTER` for the
/// routes of the cluster's audit chain (so they are forwarded to its shard's leader
/// and served like an ISPB's).
pub fn ispb_of(path: &str) -> Result<Ispb, ApiError> {
    if path == wire::paths::CLUSTER_AUDIT_EXPORT || path == wire::paths::CLUSTER_AUDIT_SEAL {
        return Ok(Ispb::CLUSTER);
    }
    let mut segments = path.split('/');
    segments.find(|s| *s == "out" || *s == "tenants");
    let text = segments.next().unwrap_or_default();
    parse_ispb(text)
}

/// Parses an `{ispb}` segment.
pub fn parse_ispb(text: &str) -> Result<Ispb, ApiError> {
    Ispb::parse(text).ok_or_else(|| ApiError::InvalidIspb(text.chars().take(16).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_read_raw() {
        assert!(ispb_of("/api/v1/out/32074986/stream/start").is_ok());
        assert!(ispb_of("/internal/v1/out/99999A03/msgs").is_ok());
        assert!(matches!(ispb_of("/api/v1/out/%33%32074986/stream/start"), Err(ApiError::InvalidIspb(_))));
        assert!(matches!(ispb_of("/api/v1/out/%FF%FE%FD%FC%FB%FA%F9%F8/stream/start"), Err(ApiError::InvalidIspb(_))));
    }
}
