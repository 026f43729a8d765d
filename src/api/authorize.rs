//! `authorize`: decides, from the request's context, whether the
//! caller may use the route — before the request is served or forwarded, so the
//! node a client reached is the one that checks it (a forwarded request was checked
//! there and is not checked again).
//! - Public stream routes, when a client mapping is configured: the client
//!   certificate must map to the path's ISPB, else 403 `forbidden`.
//! - Internal routes, when credentials are configured: the route's role
//!   (`Route::allowed_roles`, any one of them), else 401 `unauthorized` (no or unknown credentials)
//!   or 403 `forbidden` (known caller without the role). Health routes stay open.

use crate::api::ApiError;
use crate::app::App;
use crate::context::{Identity, RequestContext};

/// Refuses a request its caller may not make (a 403 is logged).
pub fn check(app: &App, ctx: &RequestContext) -> Result<(), ApiError> {
    let verdict = may_make(app, ctx);
    if let Err(ApiError::Forbidden(why)) = &verdict {
        tracing::warn!(actor = %ctx.identity.actor(), route = ctx.route.name(), why, "request forbidden");
    }
    verdict
}

/// Whether the caller of `ctx` may make the request.
fn may_make(app: &App, ctx: &RequestContext) -> Result<(), ApiError> {
    if let Identity::Forwarded { .. } = ctx.identity {
        return Ok(());
    }
    let security = &app.config.security;
    if ctx.route.reads_a_stream() && security.checks_public_access() {
        // A path without a valid ISPB is refused by the handler (`invalidIspb`).
        let Some(ispb) = &ctx.ispb else { return Ok(()) };
        return match &ctx.identity {
            Identity::Certificate { certificate, .. } if app.access.clients().may_read(certificate, ispb) => Ok(()),
            Identity::Certificate { .. } => {
                Err(ApiError::Forbidden(format!("this client certificate may not read ISPB {}", ispb.as_str())))
            }
            _ => Err(ApiError::Forbidden("a client certificate is required".into())),
        };
    }
    let Some(roles) = ctx.route.allowed_roles() else { return Ok(()) };
    if !security.checks_internal_access() {
        return Ok(());
    }
    match &ctx.identity {
        Identity::Principal(principal) if roles.iter().any(|role| principal.has(*role)) => Ok(()),
        Identity::Principal(principal) => {
            let wanted: Vec<&str> = roles.iter().map(|role| role.name()).collect();
            Err(ApiError::Forbidden(format!("{} does not hold the role {}", principal.name, wanted.join(" or "))))
        }
        Identity::Certificate { .. } => Err(ApiError::Forbidden("this client certificate holds no role".into())),
        Identity::UnknownToken => Err(ApiError::Unauthorized("unknown bearer token")),
        Identity::Anonymous | Identity::Forwarded { .. } => {
            Err(ApiError::Unauthorized("a bearer token or a client certificate is required"))
        }
    }
}
