//! `TokenKey`: one 32-byte HMAC-SHA256 secret. It keeps the HMAC state with the key
//! already absorbed (the inner and outer pads), so tagging a token costs only the
//! hash of its ~60 bytes. It never shows its bytes (`Debug` prints nothing secret).

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an HMAC-SHA256 tag in bytes.
pub(crate) const TAG_LEN: usize = 32;

/// A secret that authenticates tokens.
#[derive(Clone)]
pub struct TokenKey {
    /// HMAC-SHA256 keyed with the secret, before any message byte.
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The key with these secret bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> TokenKey {
        let keyed = Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC takes keys of any length");
        TokenKey { keyed }
    }

    /// A fresh random key from the operating system's generator; also returns its
    /// bytes, to be written to a key file.
    pub(crate) fn generate() -> (TokenKey, [u8; KEY_LEN]) {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        (TokenKey::from_bytes(&bytes), bytes)
    }

    /// The HMAC-SHA256 tag of `message`.
    pub(crate) fn tag(&self, message: &[u8]) -> [u8; TAG_LEN] {
        self.keyed.clone().chain_update(message).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `message`, compared in constant time.
    pub(crate) fn verifies(&self, message: &[u8], tag: &[u8]) -> bool {
        self.keyed.clone().chain_update(message).verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2: key "Jefe", a short key padded like ours.
    #[test]
    fn tags_are_standard_hmac_sha256() {
        let keyed = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("any length");
        let key = TokenKey { keyed };
        let tag = key.tag(b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(key.verifies(b"what do ya want for nothing?", &tag));
        assert!(!key.verifies(b"what do ya want for nothing!", &tag));
        assert!(!key.verifies(b"what do ya want for nothing?", &tag[..31]), "a short tag never verifies");
    }

    #[test]
    fn keys_differ_and_hide_their_bytes() {
        let a = TokenKey::from_bytes(&[1; KEY_LEN]);
        let b = TokenKey::from_bytes(&[2; KEY_LEN]);
        assert_ne!(a.tag(b"m"), b.tag(b"m"));
        assert!(!b.verifies(b"m", &a.tag(b"m")));
        assert_eq!(format!("{a:?}"), "TokenKey(..)");
        let (generated, bytes) = TokenKey::generate();
        assert_eq!(generated.tag(b"m"), TokenKey::from_bytes(&bytes).tag(b"m"));
        assert_ne!(bytes, TokenKey::generate().1, "two generated keys differ");
    }
}
