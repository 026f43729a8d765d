//! The pull side of the domain (SPEC.md §2.2–2.5): opening, continuing and closing
//! streams, the long poll, and idle expiry. No HTTP here: `api::stream` extracts,
//! negotiates, calls `PullService` and renders what it returns.
//!
//! Layout:
//! - `service`   — `PullService`: open / next / close, token checks, hand-outs.
//! - `read`      — what a read returns: messages, next `PI-Pull-Next`, stream slots.
//! - `long_poll` — the wait for a wake-up, the deadline (spread) or shutdown.
//! - `claims`    — which woken streams of an ISPB propose a read (the others wait).
//! - `notify`    — per-ISPB wake-ups, fed by the state machine after each apply.
//! - `activity`  — leader-local stream activity: `streamBusy` and idle detection.
//! - `sweeper`   — background expiry of idle streams, dated across leader changes.
//! - `replay`    — compliance replay streams: open, read, close.

mod activity;
mod claims;
mod long_poll;
mod notify;
mod read;
mod replay;
mod service;
pub mod sweeper;

pub use notify::{Notifier, WakeCounts};
pub use read::{Read, ReadSize, Slots, StreamPosition};
pub use replay::{ReplayFrom, ReplayOpened};
pub use service::PullService;
