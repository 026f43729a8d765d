//! `pixstream-wire` (imported as `wire`): the ICOM wire format that the server, its
//! CLI client commands and the load tool share. It does no I/O and holds no server
//! state: names, texts and byte layouts only.
//!
//! Layout:
//! - `headers`   — names of the ICOM and pixstream extension headers.
//! - `multipart` — RFC 2046 `multipart/mixed` rendering (pull) and parsing (produce).
//! - `clock`     — epoch milliseconds and the `Pix-Enqueued-At` format.
//! - `paths`     — route templates and path builders of the public and internal API.

pub mod clock;
pub mod headers;
pub mod multipart;
pub mod paths;
