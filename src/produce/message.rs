//! One producer message as received, and its checks: the size limit, the SPI
//! envelope (`wire::envelope::validate_envelope`) and the optional producer-supplied
//! `PI-ResourceId`. A checked message becomes the `NewMessage` the log stores.

use base64::Engine;
use bytes::Bytes;
use rand::RngCore;
use storage::{Ispb, NewMessage};

use crate::error::{Error, MessageFault};
use wire::envelope;

/// Longest producer-supplied `PI-ResourceId`.
const MAX_RESOURCE_ID_LEN: usize = 64;

/// One message of a producer request, before validation.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub body: Bytes,
    /// The `PI-ResourceId` the producer gave (header or part header), unchecked.
    pub resource_id: Option<String>,
}

impl Incoming {
    /// The producer's `PI-ResourceId`, checked (`part` is the 1-based position).
    pub(super) fn supplied_resource_id(&self, part: usize) -> Result<Option<String>, Error> {
        self.resource_id.as_deref().map(|id| checked_resource_id(id, part)).transpose()
    }

    /// Checks the message's size and envelope and prepares it for the log under the
    /// checked `supplied` id (else a fresh one).
    pub(super) fn check(
        self,
        ispb: &Ispb,
        part: usize,
        supplied: Option<String>,
        max_bytes: usize,
    ) -> Result<NewMessage, Error> {
        if self.body.len() > max_bytes {
            return Err(Error::MessageTooLarge { part, bytes: self.body.len(), limit: max_bytes });
        }
        let info = envelope::validate_envelope(&self.body, ispb.as_str())
            .map_err(|e| Error::InvalidMessage { part, fault: e.into() })?;
        let resource_id = supplied.clone().unwrap_or_else(new_resource_id);
        let dedupe_key = supplied.or(info.biz_msg_idr).unwrap_or_else(|| resource_id.clone());
        Ok(NewMessage { resource_id, dedupe_key, msg_type: info.msg_def_idr, body: self.body })
    }
}

/// A producer's `PI-ResourceId`: 1–64 characters of Base64/URL-safe text (trimmed).
fn checked_resource_id(text: &str, part: usize) -> Result<String, Error> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= MAX_RESOURCE_ID_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b));
    if valid { Ok(text.to_owned()) } else { Err(Error::InvalidMessage { part, fault: MessageFault::ResourceId }) }
}

/// A fresh `PI-ResourceId`: 24 random bytes as 32 characters of standard Base64.
pub fn new_resource_id() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ispb() -> Ispb {
        Ispb::parse("32074986").expect("valid")
    }

    #[test]
    fn supplied_resource_ids_are_checked() {
        let bad = Incoming { body: Bytes::from_static(b"not xml"), resource_id: Some("no spaces allowed".into()) };
        let error = bad.supplied_resource_id(3).expect_err("refused");
        assert!(matches!(error, Error::InvalidMessage { part: 3, fault: MessageFault::ResourceId }), "{error:?}");
        assert_eq!(checked_resource_id(" Ab+/=_-9 ", 1).expect("valid"), "Ab+/=_-9");
        assert!(checked_resource_id(&"a".repeat(65), 1).is_err());
        assert!(checked_resource_id("", 1).is_err());
    }

    #[test]
    fn oversized_and_malformed_messages_name_their_part() {
        let big = Incoming { body: Bytes::from(vec![b'x'; 11]), resource_id: None };
        assert!(matches!(
            big.check(&ispb(), 2, None, 10),
            Err(Error::MessageTooLarge { part: 2, bytes: 11, limit: 10 })
        ));
        let broken = Incoming { body: Bytes::from_static(b"<Envelope>"), resource_id: None };
        assert!(matches!(
            broken.check(&ispb(), 1, None, 1000),
            Err(Error::InvalidMessage { part: 1, fault: MessageFault::Envelope(_) })
        ));
    }

    #[test]
    fn fresh_resource_ids_are_32_characters_of_base64() {
        let id = new_resource_id();
        assert_eq!(id.len(), 32);
        assert_ne!(id, new_resource_id());
    }
}
