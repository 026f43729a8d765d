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

/// The `{shard}` segment of a shard admin path, read from the URI (a forwarded
/// request carries the peer route's captures too, so `Path` would not do).
pub struct ShardSegment(pub u32);

impl<S: Send + Sync> FromRequestParts<S> for ShardSegment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        shard_of(parts.uri.path()).map(ShardSegment).ok_or(ApiError::NotFound)
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

/// The `{shard}` of a shard admin path (`/internal/v1/cluster/shards/{shard}…`).
pub fn shard_of(path: &str) -> Option<u32> {
    let rest = path.strip_prefix("/internal/v1/cluster/shards/")?;
    rest.split('/').next()?.parse().ok()
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

    #[test]
    fn shard_paths_name_their_shard() {
        assert_eq!(shard_of(&wire::paths::cluster_shard_path(7)), Some(7));
        assert_eq!(shard_of(&wire::paths::cluster_shard_leader_path(12)), Some(12));
        assert_eq!(shard_of(wire::paths::CLUSTER_STATUS), None);
        assert_eq!(shard_of("/internal/v1/cluster/shards/x/leader"), None);
        assert!(ispb_of(&wire::paths::cluster_shard_path(7)).is_err(), "a shard path names no ISPB");
    }
}
