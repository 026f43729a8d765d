//! `AuditRecord`: one entry of an ISPB's audit chain — who (actor, request id) did
//! what (action, stream, seqs, resource ids, outcome) when — and the canonical bytes
//! its hash covers. Payload content never enters a record.
//!
//! Canonical form (what `hash` is the SHA-256 of): the tag `pixstream-audit-record-v1`,
//! then each field in declaration order: the chain's 8 ISPB digits; `seq` and `at_ms`
//! as u64 big-endian; strings as a u32 big-endian byte length and their UTF-8 bytes;
//! `stream` as a byte 0 (none) or 1 followed by the u64; lists as a u32 count then
//! their items; `prev` as its 32 bytes.

use serde::{Deserialize, Serialize};

use super::Digest;
use crate::{Ispb, Seq, StreamId};

const RECORD_TAG: &[u8] = b"pixstream-audit-record-v1";

/// Who asked for a change, as the node that received the request saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The authenticated principal (`cert:…`, `token:…`), `anonymous`, or `system:…`
    /// for the node's own housekeeping.
    pub actor: String,
    /// The request id the client saw in `X-Request-Id` (empty for housekeeping).
    pub request_id: String,
}

impl Origin {
    /// An origin for the node's own work (`system:<what>`).
    pub fn system(what: &str) -> Origin {
        Origin { actor: format!("system:{what}"), request_id: String::new() }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    /// Messages appended (`seqs` and `resource_ids` of the new messages).
    #[serde(rename = "append")]
    Append,
    /// A stream opened (its first batch in `seqs`) or was refused.
    #[serde(rename = "stream.open")]
    StreamOpen,
    /// A read: `confirmed` the batch it confirmed, `seqs` the next one.
    #[serde(rename = "stream.read")]
    StreamRead,
    /// A retry with the previous token: the outstanding batch again, nothing confirmed.
    #[serde(rename = "stream.repeat")]
    StreamRepeat,
    /// A stream closed by its client (`confirmed`, or `seqs` back for redelivery).
    #[serde(rename = "stream.close")]
    StreamClose,
    /// An idle stream expired; its batch (`seqs`) goes back for redelivery.
    #[serde(rename = "stream.expire")]
    StreamExpire,
    /// The tenant's settings were created or changed.
    #[serde(rename = "tenant.upsert")]
    TenantUpsert,
    /// A request for this ISPB by a principal not allowed to make it.
    #[serde(rename = "access.forbidden")]
    Forbidden,
    /// A `PI-Pull-Next` token that failed verification (rate-bounded).
    #[serde(rename = "access.invalid_token")]
    InvalidToken,
    /// A request for this ISPB without acceptable credentials.
    #[serde(rename = "access.unauthenticated")]
    Unauthenticated,
    /// The cluster's membership was changed, or a change refused (chain
    /// `Ispb::CLUSTER`; `outcome` names the nodes and the result).
    #[serde(rename = "cluster.membership")]
    ClusterMembership,
    /// Confirmed messages past the tenant's retention were deleted (`outcome` names
    /// the seqs).
    #[serde(rename = "retention.purge")]
    RetentionPurge,
    /// An operator moved the watermark back (redelivery from a seq) or forward
    /// (skipping, with the reason in `outcome`).
    #[serde(rename = "cursor.move")]
    CursorMove,
    /// A backup of one node was taken, or refused (chain `Ispb::CLUSTER`; `outcome`
    /// names the node, the directory and the result).
    #[serde(rename = "node.backup")]
    NodeBackup,
    /// An operator deleted the tenant (`outcome`: what went with it, and the reason).
    #[serde(rename = "tenant.delete")]
    TenantDelete,
    /// An operator opened a compliance replay (`outcome`: its id and range).
    #[serde(rename = "replay.open")]
    ReplayOpen,
    /// A replay ended, was deleted by its reader, or expired.
    #[serde(rename = "replay.close")]
    ReplayClose,
    /// An operator moved a shard's leadership to another node, or tried to (chain
    /// `Ispb::CLUSTER`).
    #[serde(rename = "cluster.leader_transfer")]
    LeaderTransfer,
}

impl AuditAction {
    /// The name used in exports and in the canonical form.
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Append => "append",
            AuditAction::StreamOpen => "stream.open",
            AuditAction::StreamRead => "stream.read",
            AuditAction::StreamRepeat => "stream.repeat",
            AuditAction::StreamClose => "stream.close",
            AuditAction::StreamExpire => "stream.expire",
            AuditAction::TenantUpsert => "tenant.upsert",
            AuditAction::Forbidden => "access.forbidden",
            AuditAction::InvalidToken => "access.invalid_token",
            AuditAction::Unauthenticated => "access.unauthenticated",
            AuditAction::ClusterMembership => "cluster.membership",
            AuditAction::RetentionPurge => "retention.purge",
            AuditAction::CursorMove => "cursor.move",
            AuditAction::NodeBackup => "node.backup",
            AuditAction::TenantDelete => "tenant.delete",
            AuditAction::ReplayOpen => "replay.open",
            AuditAction::ReplayClose => "replay.close",
            AuditAction::LeaderTransfer => "cluster.leader_transfer",
        }
    }

    /// Security events and operators' changes: recorded even with
    /// `[audit] enabled = false`.
    pub fn always_recorded(self) -> bool {
        matches!(
            self,
            AuditAction::Forbidden
                | AuditAction::InvalidToken
                | AuditAction::Unauthenticated
                | AuditAction::ClusterMembership
                | AuditAction::TenantUpsert
                | AuditAction::CursorMove
                | AuditAction::NodeBackup
                | AuditAction::TenantDelete
                | AuditAction::ReplayOpen
                | AuditAction::ReplayClose
                | AuditAction::LeaderTransfer
        )
    }
}

/// One entry of an ISPB's audit chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub chain: Ispb,
    /// Position in the chain: from 1, contiguous.
    pub seq: u64,
    /// Time of the command, from the proposing leader.
    pub at_ms: u64,
    pub actor: String,
    pub request_id: String,
    pub action: AuditAction,
    pub stream: Option<StreamId>,
    /// Message seqs this action confirmed.
    pub confirmed: Vec<Seq>,
    /// Message seqs this action handed out, returned for redelivery or appended.
    pub seqs: Vec<Seq>,
    /// `PI-ResourceId`s of those messages, in the same order.
    pub resource_ids: Vec<String>,
    /// `ok`, `refused: …`, `redelivered`, or the reason given.
    pub outcome: String,
    /// Hash of the chain's previous record (`Digest::ZERO` for the first).
    pub prev: Digest,
    /// SHA-256 of the canonical form of every field above.
    pub hash: Digest,
}

/// The fields of a record before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at_ms: u64,
    pub origin: Origin,
    pub action: AuditAction,
    pub stream: Option<StreamId>,
    pub confirmed: Vec<Seq>,
    pub seqs: Vec<Seq>,
    pub resource_ids: Vec<String>,
    pub outcome: String,
}

impl AuditRecord {
    /// Chains `event` as record `seq` of `chain` after a record hashed `prev`.
    pub(crate) fn chained(chain: Ispb, seq: u64, prev: Digest, event: AuditEvent) -> AuditRecord {
        let mut record = AuditRecord {
            chain,
            seq,
            at_ms: event.at_ms,
            actor: event.origin.actor,
            request_id: event.origin.request_id,
            action: event.action,
            stream: event.stream,
            confirmed: event.confirmed,
            seqs: event.seqs,
            resource_ids: event.resource_ids,
            outcome: event.outcome,
            prev,
            hash: Digest::ZERO,
        };
        record.hash = record.computed_hash();
        record
    }

    /// The SHA-256 of this record's canonical form (what `hash` should be).
    pub fn computed_hash(&self) -> Digest {
        let mut out = Canonical(Vec::with_capacity(256));
        out.bytes(RECORD_TAG);
        out.bytes(self.chain.as_bytes());
        out.u64(self.seq);
        out.u64(self.at_ms);
        out.str(&self.actor);
        out.str(&self.request_id);
        out.str(self.action.name());
        match self.stream {
            None => out.bytes(&[0]),
            Some(id) => {
                out.bytes(&[1]);
                out.u64(id);
            }
        }
        out.u64s(&self.confirmed);
        out.u64s(&self.seqs);
        out.len(self.resource_ids.len());
        self.resource_ids.iter().for_each(|id| out.str(id));
        out.str(&self.outcome);
        out.bytes(&self.prev.0);
        Digest::of(&out.0)
    }
}

/// The canonical byte writer of records and checkpoints.
pub(super) struct Canonical(pub Vec<u8>);

impl Canonical {
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    pub fn len(&mut self, len: usize) {
        self.0.extend_from_slice(&(len as u32).to_be_bytes());
    }

    pub fn str(&mut self, text: &str) {
        self.len(text.len());
        self.bytes(text.as_bytes());
    }

    fn u64s(&mut self, values: &[u64]) {
        self.len(values.len());
        values.iter().for_each(|v| self.u64(*v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            at_ms: 1_700_000_000_000,
            origin: Origin { actor: "cert:psp-a".into(), request_id: "n1-7".into() },
            action: AuditAction::StreamRead,
            stream: Some(3),
            confirmed: vec![1, 2],
            seqs: vec![3],
            resource_ids: vec!["r3".into()],
            outcome: "ok".into(),
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let ispb = Ispb::parse("32074986").expect("valid");
        let record = AuditRecord::chained(ispb, 5, Digest::of(b"prev"), event());
        assert_eq!(record.hash, record.computed_hash());
        let changes: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.seq += 1,
            |r| r.at_ms += 1,
            |r| r.actor.push('x'),
            |r| r.request_id.push('x'),
            |r| r.action = AuditAction::StreamRepeat,
            |r| r.stream = None,
            |r| r.confirmed.pop().map(drop).unwrap_or_default(),
            |r| r.seqs.push(4),
            |r| r.resource_ids[0].push('x'),
            |r| r.outcome.push('x'),
            |r| r.prev = Digest::ZERO,
            |r| r.chain = Ispb::parse("00038166").expect("valid"),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut altered = record.clone();
            change(&mut altered);
            assert_ne!(altered.computed_hash(), record.hash, "change {i} is detected");
        }
    }

    #[test]
    fn moving_a_value_between_lists_changes_the_hash() {
        let ispb = Ispb::parse("32074986").expect("valid");
        let record = AuditRecord::chained(ispb, 1, Digest::ZERO, event());
        let mut moved = record.clone();
        moved.confirmed = vec![1];
        moved.seqs = vec![2, 3];
        assert_ne!(moved.computed_hash(), record.hash);
    }
}
