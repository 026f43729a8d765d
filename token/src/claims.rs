//! What a `PI-Pull-Next` token asserts: the ISPB, shard, stream, stream generation,
//! issue time and stream kind. Plain data; the key id and format version belong to
//! the wire encoding (`codec`), and the MAC key to the key ring (`keyring`).

/// Which kind of stream a token continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// A normal stream following the ISPB's log.
    Live,
    /// A stream re-reading already delivered messages (operator replay).
    Replay,
}

/// The authenticated content of a `PI-Pull-Next` token (SPEC.md §2.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenClaims {
    /// The participant the token was issued to: 8 ASCII characters of `[0-9A-Z]`.
    pub ispb: [u8; 8],
    /// The Raft group owning the ISPB when the token was issued.
    pub shard: u32,
    /// Stream id, unique within the ISPB.
    pub stream: u64,
    /// Which read of the stream this token continues.
    pub generation: u64,
    /// Issue time, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// Live or replay stream.
    pub kind: StreamKind,
}
