//! pixstream: the Pix outgoing message stream appliance (ICOM-compatible pull API).
//!
//! Layout:
//! - `error`     — `ApiError`, the crate's one error enum, rendered as RFC 7807 XML.
//! - `headers`   — names of the ICOM and pixstream extension headers.
//! - `xml`       — SPI envelope validation of producer messages.
//! - `multipart` — RFC 2046 `multipart/mixed` rendering (pull) and parsing (produce).
//! - `sample`    — generator of realistic SPI envelopes for tests, CLI and benchmarks.
//! - `token`     — Ed25519-signed `PI-Pull-Next` cursors and the key ring.
//!
//! Dependency direction: this crate → `raft` → `storage`, never back.

pub mod error;
pub mod headers;
pub mod multipart;
pub mod sample;
pub mod token;
pub mod xml;
