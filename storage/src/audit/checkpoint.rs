//! `Checkpoint`: a signed statement that record `upto` of an ISPB's chain has hash
//! `hash`. The leader signs it with the node's Ed25519 audit key and proposes it; once
//! applied, every replica holds it beside the records. A verifier holding the public
//! key can then trust every record linked to it, and notices a log cut short of it.
//!
//! Signed bytes: the tag `pixstream-audit-checkpoint-v1`, the chain's 8 ISPB digits,
//! `upto` and `at_ms` as u64 big-endian, the 32 bytes of `hash`, `key_id` as a u32
//! big-endian length and its bytes.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::Digest;
use super::digest::{from_hex, to_hex};
use super::record::Canonical;
use crate::Ispb;

const CHECKPOINT_TAG: &[u8] = b"pixstream-audit-checkpoint-v1";

/// An Ed25519 signature (64 bytes; hex in JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A sealed position of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub chain: Ispb,
    /// The seq of the last record it seals.
    pub upto: u64,
    /// That record's hash.
    pub hash: Digest,
    pub at_ms: u64,
    /// Names the signing key (`<key_id>.pub` verifies it).
    pub key_id: String,
    pub signature: Signature,
}

impl Checkpoint {
    /// Signs "record `upto` of `chain` has hash `hash`" with `key`.
    pub fn sign(chain: Ispb, upto: u64, hash: Digest, at_ms: u64, key_id: &str, key: &SigningKey) -> Checkpoint {
        let mut checkpoint =
            Checkpoint { chain, upto, hash, at_ms, key_id: key_id.to_owned(), signature: Signature([0; 64]) };
        checkpoint.signature = Signature(key.sign(&checkpoint.signed_bytes()).to_bytes());
        checkpoint
    }

    /// Whether `key` made this checkpoint's signature over its fields.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&self.signed_bytes(), &signature).is_ok()
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Canonical(Vec::with_capacity(128));
        out.bytes(CHECKPOINT_TAG);
        out.bytes(self.chain.as_bytes());
        out.u64(self.upto);
        out.u64(self.at_ms);
        out.bytes(&self.hash.0);
        out.str(&self.key_id);
        out.0
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&to_hex(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Signature, D::Error> {
        use serde::de::Error;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            return from_hex(&text).map(Signature).ok_or_else(|| D::Error::custom("a signature is 128 hex digits"));
        }
        let bytes = serde_bytes_vec(deserializer)?;
        bytes.try_into().map(Signature).map_err(|_| D::Error::custom("a signature is 64 bytes"))
    }
}

fn serde_bytes_vec<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("signature bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    deserializer.deserialize_bytes(Bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field_and_only_its_key_verifies() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let ispb = Ispb::parse("32074986").expect("valid");
        let checkpoint = Checkpoint::sign(ispb, 9, Digest::of(b"r9"), 1_000, "a1", &key);
        assert!(checkpoint.signed_by(&key.verifying_key()));
        assert!(!checkpoint.signed_by(&other.verifying_key()));
        let changes: Vec<fn(&mut Checkpoint)> =
            vec![|c| c.upto += 1, |c| c.at_ms += 1, |c| c.hash = Digest::ZERO, |c| c.key_id.push('x'), |c| {
                c.chain = Ispb::parse("00038166").expect("valid")
            }];
        for change in changes {
            let mut altered = checkpoint.clone();
            change(&mut altered);
            assert!(!altered.signed_by(&key.verifying_key()));
        }
    }

    #[test]
    fn checkpoints_round_trip_through_json_and_bincode() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let ispb = Ispb::parse("32074986").expect("valid");
        let checkpoint = Checkpoint::sign(ispb, 1, Digest::of(b"x"), 5, "a1", &key);
        let json = serde_json::to_string(&checkpoint).expect("json");
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).expect("parses"), checkpoint);
        let bytes = crate::db::encode(&checkpoint);
        assert_eq!(crate::db::decode::<Checkpoint>("audit", &bytes).expect("decodes"), checkpoint);
    }
}
