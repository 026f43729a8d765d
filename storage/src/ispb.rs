//! `Ispb`: the 8-character participant id (`[0-9A-Z]{8}`), the reserved id of the
//! cluster's own audit chain (`Ispb::CLUSTER`, which no request can name), and
//! `shard_of`, the stable hash that places an ISPB in a shard. Every node computes the same shard
//! for the same ISPB and shard count, forever: changing this function moves data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A participant id: exactly 8 bytes of `[0-9A-Z]`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ispb([u8; 8]);

impl Ispb {
    /// The cluster's own audit chain: membership changes, and access events for
    /// ISPBs that have no tenant. Its id is outside `[0-9A-Z]`, so no path parses to
    /// it; stored and exported records name it as `_cluster`.
    pub const CLUSTER: Ispb = Ispb(*b"_cluster");

    /// Whether this is `Ispb::CLUSTER`, not a participant.
    pub fn is_cluster(&self) -> bool {
        *self == Ispb::CLUSTER
    }

    /// Reads a stored or exported id: a participant's, or `Ispb::CLUSTER`.
    fn from_record(bytes: [u8; 8]) -> Option<Ispb> {
        if bytes == Ispb::CLUSTER.0 { Some(Ispb::CLUSTER) } else { Ispb::from_bytes(bytes) }
    }

    /// Parses a path segment; `None` unless it is exactly 8 of `[0-9A-Z]`.
    pub fn parse(text: &str) -> Option<Ispb> {
        let bytes: [u8; 8] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()).then_some(Ispb(bytes))
    }

    /// Builds from raw bytes, validating them like `parse`.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Ispb> {
        std::str::from_utf8(&bytes).ok().and_then(Ispb::parse)
    }

    /// The 8 raw bytes (the key prefix in every column family).
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever admitted by the constructors.
        std::str::from_utf8(&self.0).unwrap_or("????????")
    }
}

impl fmt::Display for Ispb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ispb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ispb({})", self.as_str())
    }
}

const NOT_AN_ISPB: &str = "an ISPB is 8 characters of [0-9A-Z]";

/// In JSON (exports, admin answers) an ISPB is its text; in stored records its 8 bytes.
impl Serialize for Ispb {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            serializer.serialize_newtype_struct("Ispb", &self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ispb {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ispb, D::Error> {
        use serde::de::Error;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            let bytes: [u8; 8] = text.as_bytes().try_into().map_err(|_| D::Error::custom(NOT_AN_ISPB))?;
            Ispb::from_record(bytes).ok_or_else(|| D::Error::custom(NOT_AN_ISPB))
        } else {
            let bytes = <[u8; 8]>::deserialize(deserializer)?;
            Ispb::from_record(bytes).ok_or_else(|| D::Error::custom(NOT_AN_ISPB))
        }
    }
}

/// The shard of an ISPB: FNV-1a over its 8 bytes, modulo `shards`.
///
/// FNV-1a is fixed by definition (unlike `std`'s `DefaultHasher`), so the mapping is
/// stable across builds, platforms and releases.
pub fn shard_of(ispb: &Ispb, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ispb.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_eight_digits_or_capitals() {
        assert!(Ispb::parse("32074986").is_some());
        assert!(Ispb::parse("99999A03").is_some());
        for bad in ["", "3207498", "320749860", "99999a03", "9999-A03", "ÁBCDEFGH", "1234567 "] {
            assert!(Ispb::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_cluster_chain_id_is_read_back_from_records_but_no_path_names_it() {
        assert_eq!(Ispb::parse(Ispb::CLUSTER.as_str()), None);
        let json = serde_json::to_string(&Ispb::CLUSTER).expect("json");
        assert_eq!(json, "\"_cluster\"");
        assert_eq!(serde_json::from_str::<Ispb>(&json).expect("read back"), Ispb::CLUSTER);
        assert!(serde_json::from_str::<Ispb>("\"_other__\"").is_err());
        let stored = crate::db::encode(&Ispb::CLUSTER);
        assert_eq!(crate::db::decode::<Ispb>("test", &stored).expect("read back"), Ispb::CLUSTER);
    }

    #[test]
    fn shard_mapping_is_stable() {
        // Pinned values: a change here would move every tenant to another shard.
        let ispb = Ispb::parse("32074986").expect("valid");
        assert_eq!(shard_of(&ispb, 16), shard_of(&ispb, 16));
        assert_eq!(shard_of(&ispb, 1), 0);
        let pinned: Vec<u32> = ["00000000", "32074986", "99999A03", "60746948"]
            .iter()
            .map(|s| shard_of(&Ispb::parse(s).expect("valid"), 16))
            .collect();
        assert_eq!(pinned, PINNED_SHARDS_16);
    }

    /// Shards of the four ISPBs above with 16 shards, computed once and frozen.
    const PINNED_SHARDS_16: [u32; 4] = [5, 12, 14, 5];
}
