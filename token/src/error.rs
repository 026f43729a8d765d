//! `KeyError`: a key directory or key file that cannot be used, so the node refuses
//! to start. Messages name files, never their content. (A refused token is
//! `codec::InvalidToken`.)

use std::io;
use std::path::PathBuf;

use crate::codec::MAX_KEY_ID_LEN;

/// A key directory or key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key id {key_id:?} is not 1-{MAX_KEY_ID_LEN} characters of [A-Za-z0-9_-]")]
    BadKeyId { key_id: String },
    #[error("key file {}: the name must be a key id of 1-{MAX_KEY_ID_LEN} characters of [A-Za-z0-9_-]", path.display())]
    BadFileName { path: PathBuf },
    /// A key file whose content or kind is wrong.
    #[error("key file {}: {why}", path.display())]
    BadFile { path: PathBuf, why: &'static str },
    /// A key file that group or others may read or write (unix mode & 0o077 ≠ 0).
    #[error(
        "key file {} has mode {mode:03o}: group or others may access it; only the service user may: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    /// Reading or writing the directory or a file failed (`what` says which step).
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("key files {key_id}.key and {key_id}.retired are both in {}: a key is active-capable or retired, keep one", dir.display())]
    ActiveAndRetired { key_id: String, dir: PathBuf },
    #[error("active key {key_id:?} has no {key_id}.key file in {}", dir.display())]
    NoActiveKey { key_id: String, dir: PathBuf },
    #[error("active key {key_id:?} is retired ({key_id}.retired in {}): a retired key only verifies", dir.display())]
    ActiveIsRetired { key_id: String, dir: PathBuf },
    #[error("no .key file in {}", dir.display())]
    NoKey { dir: PathBuf },
}
