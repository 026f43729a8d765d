//! `pixstream-wire` (imported as `wire`): the ICOM wire format that the server, its
//! CLI client commands and the load tool share. It does no I/O and holds no server
//! state: names, texts and byte layouts only.
//!
//! Layout:
//! - `headers`   — names of the ICOM and pixstream extension headers.
//! - `multipart` — RFC 2046 `multipart/mixed` rendering (pull) and parsing (produce).
//! - `producer_body` — a producer request body split into its XML messages.
//! - `envelope`  — one-pass validation of the SPI envelope of a producer message.
//! - `clock`     — epoch milliseconds and the `Pix-Enqueued-At` format.
//! - `paths`     — route templates and path builders of the public and internal API.
//! - `fuzzing`   — the properties the fuzz targets check (replayed by `cargo test`).

pub mod clock;
pub mod envelope;
pub mod fuzzing;
pub mod headers;
pub mod multipart;
pub mod paths;
pub mod producer_body;
