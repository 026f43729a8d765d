//! RFC 2046 `multipart/mixed`: rendering of pull responses with many messages
//! (SPEC.md §2.2) and parsing of producer batches (SPEC.md §3).

mod parse;
mod render;

pub use parse::{ParsedPart, boundary_from_content_type, parse};
pub use render::{Part, choose_boundary, choose_boundary_with, content_type, render};

/// Why a `multipart/mixed` body could not be parsed. The texts are the ones producers
/// see in `invalidBody` problem details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The boundary given to [`parse`] is empty or longer than 70 characters.
    #[error("multipart boundary must be 1 to 70 characters")]
    BoundaryLength,
    /// No `--boundary` line starts a part.
    #[error("no opening multipart delimiter")]
    NoOpening,
    /// The first delimiter is the close delimiter.
    #[error("multipart body has no parts")]
    NoParts,
    /// The body ends without `--boundary--`.
    #[error("missing closing multipart delimiter")]
    NoClosing,
    /// More parts than the caller allows.
    #[error("more than {max} parts")]
    TooManyParts { max: usize },
    /// Part number `part` (from 1) has a header line that is not `Name: value`.
    #[error("part {part}: malformed header line")]
    MalformedHeader { part: usize },
}
