//! pixstream: the Pix outgoing message stream appliance (ICOM-compatible pull API).
//!
//! Layout:
//! - `config`    — `cluster.toml` mirror, validation, the embedded default.
//! - `server`    — `start`/`start_on`: storage, shard groups, the three listeners, tasks.
//! - `app`       — `App`, the state every handler shares.
//! - `api`       — HTTP routers and handlers: pulls, appends, forwarding, peers, admin.
//! - `notify`    — per-ISPB wake-ups for long polls, fed by the state machine.
//! - `read_claims` — which woken streams of an ISPB propose a read (the others wait).
//! - `activity`  — leader-local stream activity: `streamBusy` and idle detection.
//! - `sweeper`   — background expiry of idle streams.
//! - `token`     — Ed25519-signed `PI-Pull-Next` cursors and the key ring.
//! - `xml`       — SPI envelope validation of producer messages.
//! - `log_throttle` — at most one log line a second for conditions that repeat in bursts.
//! - `error`     — `ApiError`, the crate's one error enum, rendered as RFC 7807 XML.
//! - `cli`       — the `pixstream` subcommands (`serve`, `send`, `pull`, `bench`, `cluster`).
//! - `clock`, `headers`, `multipart` — re-exported from `wire`, the ICOM wire format.
//!
//! The load tool (`pixstream bench`) and the sample envelope generator live in the
//! `loadgen` crate.
//!
//! Dependency direction: this crate → `raft` → `storage`, this crate → `loadgen` →
//! `wire`, this crate → `wire`; never back.

pub mod activity;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod log_throttle;
pub mod notify;
pub mod read_claims;
pub mod server;
pub mod sweeper;
pub mod token;
pub mod xml;

pub use wire::{clock, headers, multipart};
