//! Key encodings. Fixed-width big-endian integers make RocksDB's byte order equal
//! numeric order, so a range scan of an ISPB's messages walks them in seq order.

use crate::{Ispb, Seq, StreamId};

/// `ISPB ‖ seq` for the messages family.
pub fn message_key(ispb: &Ispb, seq: Seq) -> [u8; 16] {
    ispb_u64_key(ispb, seq)
}

/// `ISPB ‖ stream id` for the streams family.
pub fn stream_key(ispb: &Ispb, stream: StreamId) -> [u8; 16] {
    ispb_u64_key(ispb, stream)
}

/// `ISPB ‖ dedupe key` for the dedupe family.
pub fn dedupe_key(ispb: &Ispb, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(ispb.as_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

/// Decodes the seq (or stream id) of a 16-byte `ISPB ‖ u64` key.
pub fn u64_suffix(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// `shard ‖ u64` for the Raft log (index) and similar per-shard families.
pub fn shard_u64_key(shard: u32, value: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(&shard.to_be_bytes());
    out[4..].copy_from_slice(&value.to_be_bytes());
    out
}

/// `shard ‖ tag` for per-shard metadata.
pub fn shard_tag_key(shard: u32, tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + tag.len());
    out.extend_from_slice(&shard.to_be_bytes());
    out.extend_from_slice(tag.as_bytes());
    out
}

/// The exclusive upper bound of every key starting with `prefix` (prefix + 1).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

fn ispb_u64_key(ispb: &Ispb, value: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(ispb.as_bytes());
    out[8..].copy_from_slice(&value.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ispb() -> impl Strategy<Value = Ispb> {
        "[0-9A-Z]{8}".prop_map(|s| Ispb::parse(&s).expect("pattern is valid"))
    }

    proptest! {
        #[test]
        fn byte_order_is_seq_order_within_an_ispb(i in ispb(), a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(message_key(&i, a).cmp(&message_key(&i, b)), a.cmp(&b));
            prop_assert_eq!(u64_suffix(&message_key(&i, a)), Some(a));
        }

        #[test]
        fn ispbs_never_interleave(i in ispb(), j in ispb(), a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(i != j);
            prop_assert_eq!(message_key(&i, a).cmp(&message_key(&j, b)), i.as_bytes().cmp(j.as_bytes()));
        }

        #[test]
        fn shard_keys_order_by_shard_then_index(s in any::<u32>(), t in any::<u32>(), a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(shard_u64_key(s, a).cmp(&shard_u64_key(t, b)), (s, a).cmp(&(t, b)));
        }

        #[test]
        fn prefix_end_bounds_every_extension(p in proptest::collection::vec(any::<u8>(), 1..12), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut key = p.clone();
            key.extend_from_slice(&tail);
            prop_assert!(key.as_slice() < prefix_end(&p).as_slice());
            prop_assert!(key.as_slice() >= p.as_slice());
        }
    }
}
