//! RFC 2046 `multipart/mixed`: rendering of pull responses with many messages
//! (SPEC.md §2.2) and parsing of producer batches (SPEC.md §3).

mod parse;
mod render;

pub use parse::{ParsedPart, boundary_from_content_type, parse};
pub use render::{Part, choose_boundary, choose_boundary_with, content_type, render};
