//! The server's side of the audit chain (SPEC.md §6; the chain itself, its records
//! and verifier live in `storage::audit`, written by the state machine):
//! - `signer` — the node's Ed25519 checkpoint key (`[audit] key_dir`) and the public
//!   keys a verifier trusts.
//! - `sealer` — on each shard this node leads, signs and proposes a checkpoint of
//!   every chain that grew, and the retention purge.
//! - `access` — access events (forbidden requests, invalid tokens, missing
//!   credentials) as `Audit` commands, at most one per ISPB and kind a second.

pub mod access;
pub mod sealer;
pub mod signer;

pub use access::AccessEvents;
pub use signer::{AuditSigner, read_public_keys};
