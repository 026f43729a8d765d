//! The audit log of each ISPB: an append-only chain of records written by the state
//! machine as it applies commands (so every replica holds the same chain), each
//! carrying the hash of the one before it, sealed at intervals by Ed25519-signed
//! checkpoints the leader proposes. It never holds payload content.
//!
//! Layout:
//! - `digest`     — `Digest`, a SHA-256 value (hex in JSON).
//! - `record`     — `AuditRecord`, `AuditAction`, `Origin`, the canonical bytes hashed.
//! - `checkpoint` — `Checkpoint`: the signed statement "record N of chain C has hash H".
//! - `chain`      — `ChainHead`, a chain's position kept in the tenant state.
//! - `store`      — keys of the audit family, reading an export, retention purge.
//! - `verify`     — checking an exported chain: links, hashes, checkpoints, signatures.

mod chain;
mod checkpoint;
mod digest;
mod record;
mod store;
mod verify;

pub use chain::ChainHead;
pub use checkpoint::{Checkpoint, Signature};
pub use digest::Digest;
pub use record::{AuditAction, AuditEvent, AuditRecord, Origin};
pub use store::{AuditEntry, ExportRange, MAX_PURGE_PER_COMMAND};
pub use store::{checkpoint_key, record_key};
pub use verify::{Finding, VerifyReport, verify_entries};
