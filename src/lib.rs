//! pixstream: the Pix outgoing message stream appliance (ICOM-compatible pull API).
//!
//! Layout, by layer — a request travels down this list, never up:
//! - `api`          — HTTP only: routers, extractors, negotiation, rendering,
//!   `ApiError` → status and RFC 7807 problem; forwarding; the peer listener.
//! - `context`      — `RequestContext` (identity, ISPB, route, request id), built
//!   once per request: where per-request policy attaches.
//! - `pull`         — domain: the stream protocol (open / next / close), the long
//!   poll, read claims, stream activity, idle expiry.
//! - `produce`      — domain: producer appends (validation, ids, dedupe keys).
//! - `shard_client` — how the services reach the shard groups (bounded proposals,
//!   read barriers, applied state).
//!
//! Beside the layers:
//! - `listener`     — the accept loop of every listener: connection cap, TLS
//!   (rustls on ring) with reload, header limits and timeouts, client certificates.
//! - `access`       — client certificate → ISPB mapping (public), bearer tokens and
//!   certificates → roles (internal); reloadable.
//! - `certs`        — development CA and certificates (`pixstream certs dev`).
//! - `audit`        — checkpoint key, sealing and retention of the audit chain,
//!   access events.
//! - `backup`       — online backup of a node (checkpoint + manifest) and restore.
//! - `retention`    — the purger of confirmed messages past their tenant's retention.
//! - `private_file` — private key files: mode checks, 0600 creation.
//! - `throttle`     — per-ISPB token buckets (rate and burst from tenant settings).
//! - `metrics`      — the node's Prometheus registry and the `/metrics` exposition.
//! - `load`         — the in-flight count load shedding reads (waiting long polls
//!   do not count).
//! - `config`       — `cluster.toml` mirror, validation, the embedded default.
//! - `error`        — `Error`, the crate's one error enum (domain and start-up).
//! - `log_throttle` — at most one log line a second for conditions that repeat in bursts.
//! - `app`          — `App`, what one node's handlers and tasks share.
//! - `server`       — `start`/`start_on`: storage, shard groups, the listeners, tasks.
//! - `cli`          — the `pixstream` subcommands (`serve`, `send`, `pull`, `bench`, `cluster`,
//!   `certs`, `audit`, `top`).
//!
//! The ICOM wire format (header names, multipart, paths, time format) is the `wire`
//! crate, shared with the CLI clients and the load tool; the load tool (`pixstream
//! bench`) and the sample envelope generator are the `loadgen` crate; the
//! HMAC-authenticated `PI-Pull-Next` cursors and their key ring are the `token` crate.
//!
//! Dependency direction: this crate → `raft` → `storage`, this crate → `loadgen` →
//! `wire`, this crate → `wire`, this crate → `token`; never back.

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod backup;
pub mod certs;
pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod listener;
pub mod load;
pub mod log_throttle;
pub mod metrics;
pub mod private_file;
pub mod produce;
pub mod pull;
pub mod retention;
pub mod server;
pub mod shard_client;
pub mod throttle;

pub use error::Error;
