//! Messages: as a producer appends them (`NewMessage`, inside the `Append` command)
//! and as they are stored and served (`StoredMessage`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Seq;

/// One message to append. Ids are chosen by the leader before proposing, so the
/// state machine stays deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// `PI-ResourceId` to serve the message under.
    pub resource_id: String,
    /// Idempotency key: the producer's `PI-ResourceId`, else the AppHdr `BizMsgIdr`.
    pub dedupe_key: String,
    /// AppHdr `MsgDefIdr`, e.g. `pacs.008.spi.1.14`.
    pub msg_type: String,
    /// The XML document, untouched.
    pub body: Bytes,
}

/// A message in an ISPB's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub seq: Seq,
    pub resource_id: String,
    pub msg_type: String,
    /// Milliseconds since the Unix epoch, from the `Append` command.
    pub enqueued_at_ms: u64,
    pub body: Bytes,
}

/// The value stored in the messages family (the seq is in the key).
#[derive(Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub resource_id: String,
    pub msg_type: String,
    pub enqueued_at_ms: u64,
    pub body: Bytes,
}

impl MessageRecord {
    pub(crate) fn into_stored(self, seq: Seq) -> StoredMessage {
        StoredMessage {
            seq,
            resource_id: self.resource_id,
            msg_type: self.msg_type,
            enqueued_at_ms: self.enqueued_at_ms,
            body: self.body,
        }
    }
}

/// The resource id of a stored messages-family value, decoding only its first field.
pub(crate) fn resource_id_of(bytes: &[u8]) -> crate::error::Result<String> {
    #[derive(Deserialize)]
    struct Head {
        resource_id: String,
    }
    bincode::serde::decode_from_slice::<Head, _>(bytes, crate::db::bincode_config())
        .map(|(head, _)| head.resource_id)
        .map_err(|e| crate::Error::Corrupt { cf: crate::columns::MESSAGES, reason: e.to_string() })
}

/// The value stored in the dedupe family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DedupeRecord {
    pub seq: Seq,
    pub resource_id: String,
    pub at_ms: u64,
}
