//! `Error`: the server crate's one error enum — every way starting a node or serving
//! a domain call (pull, append, admin) can fail, in domain terms. It knows nothing of
//! HTTP: `api::ApiError` maps each case to a status and a problem code. Leaf modules
//! keep their own precise errors (`ConfigError`, `KeyError`, `InvalidToken`,
//! `EnvelopeError`, `wire::multipart::MultipartError`) and this enum wraps them.

use std::net::SocketAddr;

use token::KeyError;

use crate::config::ConfigError;
use wire::envelope::EnvelopeError;

/// Why a producer message was refused (`Error::InvalidMessage`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageFault {
    /// The body is not an acceptable SPI envelope.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The producer's `PI-ResourceId` is not 1-64 characters of `[A-Za-z0-9+/=_-]`.
    #[error("PI-ResourceId must be 1-64 characters of [A-Za-z0-9+/=_-]")]
    ResourceId,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `PI-Pull-Next` token that is malformed, tampered, unsigned, of an unknown key,
    /// for another ISPB or shard, or naming a read the stream never made.
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
    /// Another request is advancing the same stream right now.
    #[error("another request is advancing the stream")]
    StreamBusy,
    /// The stream was closed (DELETE, idle expiry or operator action).
    #[error("the stream is closed")]
    StreamClosed,
    /// The token belongs to an open stream but is older than the previous read.
    #[error("the cursor is older than the stream's previous read")]
    StaleCursor,
    /// A repeated read whose outstanding batch holds more messages than the request
    /// may receive (`Accept: application/xml` for a multipart batch): answering one
    /// would confirm the others unseen.
    #[error("the outstanding batch holds {held} messages; repeat the request with Accept: multipart/mixed")]
    BatchTooLarge { held: usize },
    /// A producer message over `max_message_bytes`; `part` is 1-based.
    #[error("message {part} has {bytes} bytes, the limit is {limit}")]
    MessageTooLarge { part: usize, bytes: usize, limit: usize },
    /// A producer message failed validation; `part` is 1-based.
    #[error("invalid message in part {part}: {fault}")]
    InvalidMessage { part: usize, fault: MessageFault },
    /// The state machine refused the command (unknown or paused tenant, no free
    /// stream slot, closed or stale stream, back-pressure).
    #[error("refused: {0:?}")]
    Rejected(storage::Rejection),
    /// The shard cannot take or confirm commands now (no leader, a cut-off leader,
    /// storage failure); retry after `retry_after_secs`.
    #[error("unavailable: {reason}")]
    Unavailable { reason: &'static str, retry_after_secs: u64 },
    /// A bug or an unexpected failure while serving; the text is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// Start-up: the configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up: the token keys cannot be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Start-up or reload: a certificate, key or CA file is unusable.
    #[error(transparent)]
    Tls(#[from] crate::listener::TlsError),
    /// Start-up or reload: a client mapping or credentials file is unusable.
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    /// Start-up: the audit checkpoint key (or a verifier's public key) is unusable.
    #[error("audit key {}: {why}", path.display())]
    AuditKey { path: std::path::PathBuf, why: String },
    /// Start-up: a listener cannot be bound.
    #[error("bind {what} listener {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    /// A backup or restore was refused (`refused`: a bad target or source, nothing
    /// written) or failed while writing.
    #[error("backup: {why}")]
    Backup { why: String, refused: bool },
    /// Start-up: storage, the shard groups or the peer client cannot start.
    #[error("{what}: {reason}")]
    Start { what: &'static str, reason: String },
}

impl From<storage::Rejection> for Error {
    fn from(rejection: storage::Rejection) -> Self {
        Error::Rejected(rejection)
    }
}

impl From<raft::Error> for Error {
    fn from(error: raft::Error) -> Self {
        tracing::warn!(%error, "replication refused a command");
        Error::Unavailable { reason: "shard has no leader or storage is unavailable", retry_after_secs: 1 }
    }
}

impl From<token::InvalidToken> for Error {
    fn from(invalid: token::InvalidToken) -> Self {
        Error::InvalidCursor(invalid.0)
    }
}
