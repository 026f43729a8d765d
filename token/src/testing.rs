//! Helpers of the unit tests: claims to issue and key files to write.

use std::fs;
use std::path::Path;

use crate::claims::{StreamKind, TokenClaims};
use crate::key_dir::to_hex;

pub(crate) fn claims() -> TokenClaims {
    TokenClaims {
        ispb: *b"32074986",
        shard: 1,
        stream: 77,
        generation: 5,
        issued_at_ms: 1_750_000_000_000,
        kind: StreamKind::Live,
    }
}

/// The hex content of the key whose 32 bytes are all `seed`.
pub(crate) fn key_hex(seed: u8) -> String {
    to_hex(&[seed; 32])
}

/// Write a file of `dir` with `mode` (on unix).
pub(crate) fn write_with_mode(dir: &Path, name: &str, content: &str, mode: u32) {
    let path = dir.join(name);
    fs::write(&path, content).expect("write key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod key file");
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// Write a key file only its owner may read and write.
pub(crate) fn write(dir: &Path, name: &str, content: &str) {
    write_with_mode(dir, name, content, 0o600);
}

/// The key id a token names (its bytes 2.., after version and length).
pub(crate) fn key_id_of(token: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).expect("base64url");
    let len = usize::from(bytes[1]);
    String::from_utf8(bytes[2..2 + len].to_vec()).expect("ASCII key id")
}
