//! `ApiError`: every answer a client can get that is not a success, each mapped in
//! one exhaustive `match` to an HTTP status and a stable RFC 7807 problem code
//! (SPEC.md §2.6), rendered as `application/problem+xml`. Domain errors
//! (`crate::Error`) become API errors in one exhaustive `From`; the HTTP-only cases
//! (routing, negotiation, body framing) are raised here in `api/`. Bodies never carry
//! internals: the `detail` shown to clients is written here, causes are only logged.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::DEFAULT_PROBLEM_BASE;
use crate::error::Error;
use crate::log_throttle::LogThrottle;
use wire::clock::now_ms;

/// Everything a client can be answered with besides success.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    /// The `{ispb}` path segment is not 8 characters of `[0-9A-Z]`.
    #[error("invalid ISPB in path: {0:?}")]
    InvalidIspb(String),
    /// A `PI-Pull-Next` token that is malformed, tampered, unsigned, signed by an
    /// unknown key, or issued for another ISPB.
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
    /// A request header that is malformed or (strict mode) outside the allow-list.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// No usable credentials on a route that demands them.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The caller may not do this (read this ISPB, or use this route).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request took longer than `listeners.request_timeout_ms`.
    #[error("request timeout")]
    RequestTimeout,
    /// The ISPB is not registered and tenants are not auto-created.
    #[error("tenant not found")]
    TenantNotFound,
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The `Accept` header asks for a representation we do not produce.
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// 409: another request advances the stream (`Error::StreamBusy`).
    #[error("stream busy")]
    StreamBusy,
    /// 410: the stream is gone — closed, expired or never opened.
    #[error("stream closed")]
    StreamClosed,
    /// 410: a token of an open stream, older than its previous read.
    #[error("stale cursor")]
    StaleCursor,
    /// The body, or one message in it, is larger than allowed.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// A producer message failed validation; `part` is 1-based.
    #[error("invalid message in part {part}: {reason}")]
    InvalidMessage { part: usize, reason: String },
    /// A producer body that cannot be parsed at all (e.g. broken multipart framing).
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// A producer body with a `Content-Type` we do not take.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// All stream slots of the ISPB are in use.
    #[error("too many streams ({open}/{limit})")]
    TooManyStreams { open: u32, limit: u32 },
    /// The ISPB is over its request rate.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Temporarily unable to serve: no leader, storage failure, shedding, paused
    /// tenant, producer back-pressure.
    #[error("unavailable: {reason}")]
    Unavailable { reason: &'static str, retry_after_secs: u64 },
    /// A bug or an unexpected failure; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The `detail` of a 503 from load shedding.
pub const OVERLOADED: &str = "the node is overloaded";
/// The `detail` of a producer's 503 under back-pressure.
pub const BACKLOG_OVER_LIMIT: &str = "unconfirmed backlog over the tenant's limit";

impl ApiError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// Stable problem code, the last segment of the problem `type`.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// (status, code, Portuguese title as ICOM clients expect) for every case.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            InvalidIspb(_) => (StatusCode::BAD_REQUEST, "invalidIspb", "ISPB inválido"),
            InvalidCursor(_) => (StatusCode::BAD_REQUEST, "invalidCursor", "Cursor inválido"),
            InvalidHeader(_) => (StatusCode::BAD_REQUEST, "invalidHeader", "Cabeçalho inválido"),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Não autenticado"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Acesso negado"),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "requestTimeout", "Tempo da requisição esgotado"),
            TenantNotFound => (StatusCode::NOT_FOUND, "tenantNotFound", "Participante não encontrado"),
            NotFound => (StatusCode::NOT_FOUND, "notFound", "Recurso não encontrado"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "methodNotAllowed", "Método não permitido"),
            NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "notAcceptable", "Formato não aceito"),
            StreamBusy => (StatusCode::CONFLICT, "streamBusy", "Stream ocupado"),
            StreamClosed => (StatusCode::GONE, "streamClosed", "Stream encerrado"),
            StaleCursor => (StatusCode::GONE, "staleCursor", "Cursor expirado"),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payloadTooLarge", "Mensagem muito grande"),
            InvalidMessage { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalidMessage", "Mensagem inválida"),
            InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalidBody", "Corpo inválido"),
            UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupportedMediaType", "Tipo de conteúdo não suportado")
            }
            TooManyStreams { .. } => (StatusCode::TOO_MANY_REQUESTS, "tooManyStreams", "Limite de streams atingido"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rateLimited", "Limite de requisições atingido"),
            Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Serviço indisponível"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Erro interno"),
        }
    }

    /// The client-facing `detail`: precise about the request, silent about internals.
    fn detail(&self) -> String {
        match self {
            ApiError::Internal(_) => "unexpected server error".to_owned(),
            ApiError::Unavailable { reason, .. } => (*reason).to_owned(),
            other => other.to_string(),
        }
    }

    /// Why the node throttled the request, for the answers that are throttling:
    /// `rate_limit`, `stream_slots`, `shed` (the node is overloaded) or
    /// `back_pressure` (a producer over the tenant's backlog limit).
    pub fn throttle_cause(&self) -> Option<&'static str> {
        match self {
            ApiError::RateLimited { .. } => Some("rate_limit"),
            ApiError::TooManyStreams { .. } => Some("stream_slots"),
            ApiError::Unavailable { reason, .. } if *reason == OVERLOADED => Some("shed"),
            ApiError::Unavailable { reason, .. } if *reason == BACKLOG_OVER_LIMIT => Some("back_pressure"),
            _ => None,
        }
    }

    /// Seconds for `Retry-After`, for the errors that invite a retry.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyStreams { .. } => Some(1),
            ApiError::RateLimited { retry_after_secs } | ApiError::Unavailable { retry_after_secs, .. } => {
                Some((*retry_after_secs).max(1))
            }
            _ => None,
        }
    }

    /// Render as `application/problem+xml` with `type = {problem_base}{code}`.
    pub fn into_problem_response(self, problem_base: &str) -> Response {
        let (status, code, title) = self.parts();
        let body = ProblemXml {
            type_uri: format!("{problem_base}{code}"),
            title,
            status: status.as_u16(),
            detail: self.detail(),
        }
        .to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+xml; charset=utf-8"));
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Unauthorized(_) = self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"pixstream\""));
        }
        if let ApiError::TooManyStreams { open, limit } = self
            && let Ok(v) = HeaderValue::from_str(&format!("{open}/{limit}"))
        {
            headers.insert(wire::headers::PIX_STREAM_SLOTS, v);
        }
        response
    }
}

/// Carried in the extensions of an error response, so a listener configured with
/// another problem base can render the same error again.
#[derive(Clone)]
pub struct RenderedProblem(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Expected in bursts (a shard electing a leader, back-pressure): one line a second.
            static UNAVAILABLE: LogThrottle = LogThrottle::new();
            if let Some(occurrences) = UNAVAILABLE.admit(now_ms(), 1_000) {
                tracing::warn!(error = %self, code, occurrences, "requests answered 503 (at most one line a second)");
            }
        } else if status.is_server_error() {
            tracing::error!(error = %self, code, "request failed");
        } else {
            tracing::debug!(error = %self, code, "request rejected");
        }
        let mut response = self.clone().into_problem_response(DEFAULT_PROBLEM_BASE);
        response.extensions_mut().insert(RenderedProblem(self));
        response
    }
}

/// RFC 7807 problem document in its XML form.
struct ProblemXml {
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: String,
}

impl fmt::Display for ProblemXml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<problem xmlns=\"urn:ietf:rfc:7807\"><type>{}</type><title>{}</title><status>{}</status><detail>{}</detail></problem>",
            escape(&self.type_uri),
            escape(self.title),
            self.status,
            escape(&self.detail)
        )
    }
}

/// Escape text for an XML element body.
fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidCursor(reason) => ApiError::InvalidCursor(reason),
            Error::StreamBusy => ApiError::StreamBusy,
            Error::StreamClosed => ApiError::StreamClosed,
            Error::StaleCursor => ApiError::StaleCursor,
            error @ Error::BatchTooLarge { .. } => ApiError::NotAcceptable(error.to_string()),
            error @ Error::MessageTooLarge { .. } => ApiError::PayloadTooLarge(error.to_string()),
            Error::InvalidMessage { part, fault } => ApiError::InvalidMessage { part, reason: fault.to_string() },
            Error::Rejected(rejection) => rejection.into(),
            Error::Unavailable { reason, retry_after_secs } => ApiError::Unavailable { reason, retry_after_secs },
            Error::Internal(what) => ApiError::Internal(what),
            Error::Backup { why, refused: true } => ApiError::InvalidBody(why),
            error @ Error::Backup { refused: false, .. } => ApiError::Internal(error.to_string()),
            error @ (Error::Config(_)
            | Error::Keys(_)
            | Error::Tls(_)
            | Error::Access(_)
            | Error::AuditKey { .. }
            | Error::Bind { .. }
            | Error::Start { .. }) => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<storage::Rejection> for ApiError {
    fn from(rejection: storage::Rejection) -> Self {
        use storage::Rejection::*;
        match rejection {
            TenantNotFound => ApiError::TenantNotFound,
            TenantPaused => ApiError::Unavailable { reason: "tenant is paused", retry_after_secs: 5 },
            TooManyStreams { open, limit } => ApiError::TooManyStreams { open, limit },
            StreamClosed => ApiError::StreamClosed,
            StaleCursor => ApiError::StaleCursor,
            UnknownGeneration => ApiError::InvalidCursor("token names a read the stream never made"),
            CursorOutOfRange { first, next } => ApiError::InvalidBody(format!(
                "to_seq must be from {first} (older messages are purged) to {next} (the next seq)"
            )),
            ReasonRequired => ApiError::InvalidBody("skipping or discarding messages needs a reason".into()),
            TenantNotEmpty { backlog, open_streams } => ApiError::InvalidBody(format!(
                "the tenant holds {backlog} unconfirmed messages and {open_streams} open streams: \
                 delete it with force and a reason to discard them"
            )),
            UnderLegalHold => ApiError::InvalidBody("the tenant is under legal hold: release the hold first".into()),
            Backpressure { .. } => ApiError::Unavailable { reason: BACKLOG_OVER_LIMIT, retry_after_secs: 5 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant. The match has no wildcard: a new variant does not
    /// compile until it is listed here — and then needs its row in docs/errors.md.
    fn one_of_each() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidIspb(String::new()),
            ApiError::InvalidCursor(""),
            ApiError::InvalidHeader(String::new()),
            ApiError::Unauthorized(""),
            ApiError::Forbidden(String::new()),
            ApiError::RequestTimeout,
            ApiError::TenantNotFound,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::NotAcceptable(String::new()),
            ApiError::StreamBusy,
            ApiError::StreamClosed,
            ApiError::StaleCursor,
            ApiError::PayloadTooLarge(String::new()),
            ApiError::InvalidMessage { part: 1, reason: String::new() },
            ApiError::InvalidBody(String::new()),
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::TooManyStreams { open: 6, limit: 6 },
            ApiError::RateLimited { retry_after_secs: 1 },
            ApiError::Unavailable { reason: "", retry_after_secs: 1 },
            ApiError::Internal(String::new()),
        ];
        for error in &all {
            match error {
                ApiError::InvalidIspb(_)
                | ApiError::InvalidCursor(_)
                | ApiError::InvalidHeader(_)
                | ApiError::Unauthorized(_)
                | ApiError::Forbidden(_)
                | ApiError::RequestTimeout
                | ApiError::TenantNotFound
                | ApiError::NotFound
                | ApiError::MethodNotAllowed
                | ApiError::NotAcceptable(_)
                | ApiError::StreamBusy
                | ApiError::StreamClosed
                | ApiError::StaleCursor
                | ApiError::PayloadTooLarge(_)
                | ApiError::InvalidMessage { .. }
                | ApiError::InvalidBody(_)
                | ApiError::UnsupportedMediaType(_)
                | ApiError::TooManyStreams { .. }
                | ApiError::RateLimited { .. }
                | ApiError::Unavailable { .. }
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    /// Every state-machine refusal, exhaustively as above.
    fn every_rejection() -> Vec<storage::Rejection> {
        use storage::Rejection::*;
        let all = vec![
            TenantNotFound,
            TenantPaused,
            TooManyStreams { open: 6, limit: 6 },
            StreamClosed,
            StaleCursor,
            UnknownGeneration,
            CursorOutOfRange { first: 1, next: 1 },
            ReasonRequired,
            TenantNotEmpty { backlog: 1, open_streams: 0 },
            UnderLegalHold,
            Backpressure { backlog: 1, limit: 1 },
        ];
        for rejection in &all {
            match rejection {
                TenantNotFound
                | TenantPaused
                | TooManyStreams { .. }
                | StreamClosed
                | StaleCursor
                | UnknownGeneration
                | CursorOutOfRange { .. }
                | ReasonRequired
                | TenantNotEmpty { .. }
                | UnderLegalHold
                | Backpressure { .. } => {}
            }
        }
        all
    }

    /// The cells of the table rows of `text` whose first cell is in backticks.
    fn table_rows(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.trim_matches('|').split(" | ").map(|cell| cell.trim().to_owned()).collect())
            .collect()
    }

    #[test]
    fn the_error_matrix_has_a_row_for_every_problem_and_every_refusal() {
        const MATRIX: &str = include_str!("../../docs/errors.md");
        let (problems, refusals) = MATRIX.split_once("## Where the state machine").expect("two tables");
        let rows = table_rows(problems);
        let errors = one_of_each();
        for error in &errors {
            let code = format!("`{}`", error.code());
            let row = rows.iter().find(|r| r[0] == code).unwrap_or_else(|| panic!("docs/errors.md: no row for {code}"));
            assert_eq!(row[1], error.status().as_u16().to_string(), "status of {code}");
            assert_eq!(row[2] == "—", error.retry_after_secs().is_none(), "Retry-After of {code}");
        }
        for row in &rows {
            assert!(
                errors.iter().any(|e| format!("`{}`", e.code()) == row[0]),
                "docs/errors.md: {} is no problem code",
                row[0]
            );
        }
        let rows = table_rows(refusals);
        let rejections = every_rejection();
        assert_eq!(rows.len(), rejections.len(), "one row per rejection");
        for rejection in rejections {
            let name = format!("`{}`", format!("{rejection:?}").split([' ', '{']).next().unwrap_or_default());
            let error = ApiError::from(rejection);
            let row = rows.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("docs/errors.md: no row for {name}"));
            let expected = format!("`{}` ({}", error.code(), error.status().as_u16());
            assert!(row[1].starts_with(&expected), "{name}: {} does not start with {expected}", row[1]);
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::Internal("/var/lib/secret path exploded".into());
        assert_eq!(e.detail(), "unexpected server error");
    }

    #[test]
    fn every_throttling_answer_names_its_cause_and_no_other_answer_does() {
        let causes: Vec<Option<&str>> = [
            ApiError::RateLimited { retry_after_secs: 1 },
            ApiError::TooManyStreams { open: 6, limit: 6 },
            ApiError::Unavailable { reason: OVERLOADED, retry_after_secs: 1 },
            storage::Rejection::Backpressure { backlog: 10, limit: 10 }.into(),
        ]
        .iter()
        .map(ApiError::throttle_cause)
        .collect();
        let expected: Vec<Option<&str>> = crate::metrics::THROTTLE_CAUSES.iter().map(|c| Some(*c)).collect();
        assert_eq!(causes, expected);
        let no_leader = ApiError::Unavailable { reason: "the shard has no reachable leader", retry_after_secs: 1 };
        assert_eq!(no_leader.throttle_cause(), None);
        assert_eq!(ApiError::StreamBusy.throttle_cause(), None);
    }

    #[test]
    fn problem_xml_escapes_detail() {
        let p = ProblemXml {
            type_uri: "/api/v1/error/invalidBody".into(),
            title: "Corpo inválido",
            status: 400,
            detail: "a <b> & c".into(),
        };
        let xml = p.to_string();
        assert!(xml.contains("<detail>a &lt;b&gt; &amp; c</detail>"), "{xml}");
        assert!(xml.contains("<type>/api/v1/error/invalidBody</type>"));
    }
}
