//! `pixstream-loadgen` (imported as `loadgen`): the load tool behind `pixstream bench`
//! (SPEC.md §8) and the sample SPI envelope generator. It speaks to a deployment only
//! over HTTP, through the wire format of the `wire` crate; it never links the server.
//!
//! Against any deployment (by URL) it simulates `--ispbs` participants × `--streams`
//! pullers that follow `PI-Pull-Next` with `Accept: multipart/mixed` on keep-alive
//! connections, and producers that post sample SPI envelopes at `--rate` messages per
//! second (or `--preload` a backlog and measure how fast it drains). Every delivered
//! message is checked against what was produced by a ledger (no loss, never
//! outstanding in two streams at once, per-stream seq order, one id per seq); the
//! report gives pulls per minute, messages per second, pull and end-to-end latency
//! percentiles of served requests, every answer by class (status and problem code:
//! `429 rateLimited`, `429 tooManyStreams`, `503 unavailable` …) with the shed share
//! (503 / all requests) and error counts, and the run fails when the verdict is not
//! clean.
//!
//! Cost: the report ends with what the window cost — the server's CPU per pull and
//! per delivered message (from the node's own `/metrics`), this tool's, and the
//! server's operations per delivered message (Raft proposals and entries, RocksDB
//! writes and fsyncs, message reads, wake-ups, context switches, system calls);
//! `--http-floor SECS` measures `GET /healthz` first, the floor to compare with.
//!
//! Isolation: `--flood-ispb ISPB --flood-rate N` also hammers one more ISPB with
//! `stream/start` at N requests per second, open loop, and reports its answers apart;
//! its requests never enter the ledger, the latencies or the answers of the others.
//!
//! Modes:
//! - duration (default): producers and pullers run `--warmup` + `--duration` seconds;
//!   numbers cover the `--duration` window; what was produced but not yet received is
//!   reported as "undelivered at end", not as loss. With `--drain`, producers stop at
//!   the end of the window and pullers continue until everything produced was received
//!   (bounded by `--drain-timeout`), so loss is checked too.
//! - drain (`--preload N`): N messages per ISPB are posted first, then the pullers start
//!   and run until everything produced was received (bounded by `--duration`); the
//!   report gives the time to empty.
//!
//! Layout:
//! - `args`     — `BenchArgs` (the command line), its validation, the ISPB names.
//! - `run`      — `run`/`run_bench`: one run from preflight to report.
//! - `shared`   — `Shared`, what every task of a run shares; retry jitter, error kinds.
//! - `answers`  — answer classes (status and problem code) and their counts.
//! - `flood`    — the open-loop flood of one extra ISPB.
//! - `producer` — message templates, posting, rate control.
//! - `puller`   — one stream's loop and the zero-copy response scanner.
//! - `connection` — a puller's own HTTP/1.1 connection, driven on its task.
//! - `ledger`   — the correctness checker.
//! - `metrics`  — sharded latency histograms and counters.
//! - `cost`     — the node's counters and the tool's CPU around the window; the floor.
//! - `report`   — the final report, its text form and the verdict.
//! - `sample`   — generator of realistic SPI envelopes for tests, CLI and benchmarks.

pub mod answers;
pub mod args;
pub mod connection;
pub mod cost;
pub mod flood;
pub mod ledger;
pub mod metrics;
pub mod producer;
pub mod puller;
pub mod report;
mod run;
pub mod sample;
mod shared;

pub use args::{BenchArgs, ispb_names};
pub use report::Report;
pub use run::{run, run_bench};
