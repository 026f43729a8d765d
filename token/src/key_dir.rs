//! The key directory (SPEC.md §2.5): which files hold keys, who may read them, and
//! the development key generated on an empty directory.
//!
//! - `<kid>.key` — 32 secret bytes as 64 hex characters (trailing whitespace allowed);
//!   signs when it is the active key, always verifies.
//! - `<kid>.retired` — the same content; verifies only.
//! - `<kid>.pub` — a public key of the Ed25519 era: ignored, with a `KeyNotice`.
//! - anything else — ignored.
//!
//! A key file that group or others may access (unix mode & 0o077 ≠ 0) refuses
//! start-up; so do a `.key` and a `.retired` of the same key id. Errors name files,
//! never their content, and key bytes read are wiped from the read buffer.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::codec;
use crate::error::KeyError;
use crate::key::{KEY_LEN, TokenKey};

const ACTIVE_EXT: &str = "key";
const RETIRED_EXT: &str = "retired";
const ED25519_PUBLIC_EXT: &str = "pub";
/// Key files are 64 hex characters plus whitespace; anything far larger is malformed.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Whether a key may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A `.key` file: signs when active, always verifies.
    Signing,
    /// A `.retired` file: verifies only.
    Retired,
}

/// One `<kid>.key` or `<kid>.retired` file.
#[derive(Debug)]
pub(crate) struct KeyFile {
    pub(crate) key_id: String,
    pub(crate) path: PathBuf,
    pub(crate) role: Role,
}

/// Something about the key directory worth a warning that does not stop start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyNotice {
    /// A `.pub` file of the Ed25519 era, which tokens no longer use: ignored.
    IgnoredEd25519Key { path: PathBuf },
    /// No `.key` file was there, so a development key was generated.
    GeneratedDevKey { path: PathBuf },
}

impl KeyNotice {
    /// The file the notice is about.
    pub fn path(&self) -> &Path {
        match self {
            KeyNotice::IgnoredEd25519Key { path } | KeyNotice::GeneratedDevKey { path } => path,
        }
    }
}

impl fmt::Display for KeyNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyNotice::IgnoredEd25519Key { path } => write!(
                f,
                "ignoring {}: tokens are HMAC-authenticated now, Ed25519 .pub files have no use (retire a key as <kid>.retired)",
                path.display()
            ),
            KeyNotice::GeneratedDevKey { path } => {
                write!(f, "generated the development token key {}", path.display())
            }
        }
    }
}

/// The key files of a directory, sorted by key id, and the notices about the rest.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) files: Vec<KeyFile>,
    pub(crate) notices: Vec<KeyNotice>,
}

/// List the key files of `dir` (without reading them).
pub(crate) fn list(dir: &Path) -> Result<Listing, KeyError> {
    let unreadable =
        |source: io::Error| KeyError::Io { what: "cannot read key directory", path: dir.to_path_buf(), source };
    let mut files = BTreeMap::new();
    let mut notices = Vec::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let role = match path.extension().and_then(|e| e.to_str()) {
            Some(ACTIVE_EXT) => Role::Signing,
            Some(RETIRED_EXT) => Role::Retired,
            Some(ED25519_PUBLIC_EXT) => {
                notices.push(KeyNotice::IgnoredEd25519Key { path });
                continue;
            }
            _ => continue,
        };
        let Some(key_id) = path.file_stem().and_then(|s| s.to_str()).filter(|s| codec::is_valid_key_id(s)) else {
            return Err(KeyError::BadFileName { path });
        };
        let key_id = key_id.to_owned();
        if files.contains_key(&key_id) {
            return Err(KeyError::ActiveAndRetired { key_id, dir: dir.to_path_buf() });
        }
        files.insert(key_id.clone(), KeyFile { key_id, path, role });
    }
    notices.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(Listing { files: files.into_values().collect(), notices })
}

/// Read a key file: a regular file only the owner may access, holding 64 hex
/// characters (plus trailing whitespace).
pub(crate) fn read_key(path: &Path) -> Result<TokenKey, KeyError> {
    let failed = |source: io::Error| KeyError::Io { what: "cannot read key file", path: path.to_path_buf(), source };
    // Checked before opening: opening a FIFO would block.
    if !fs::metadata(path).map_err(failed)?.is_file() {
        return Err(KeyError::BadFile { path: path.to_path_buf(), why: "not a regular file" });
    }
    let file = fs::File::open(path).map_err(failed)?;
    let opened = file.metadata().map_err(failed)?;
    if !opened.is_file() {
        return Err(KeyError::BadFile { path: path.to_path_buf(), why: "not a regular file" });
    }
    check_private_mode(path, &opened)?;
    let mut content = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut content).map_err(failed)?;
    let parsed = parse_hex_key(content.trim_ascii_end());
    content.fill(0);
    parsed.map(|bytes| TokenKey::from_bytes(&bytes)).ok_or_else(|| KeyError::BadFile {
        path: path.to_path_buf(),
        why: "expected 64 hex characters (32 bytes) and nothing else",
    })
}

/// Refuse a key file that group or others may access.
fn check_private_mode(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
    Ok(())
}

fn parse_hex_key(hex: &[u8]) -> Option<[u8; KEY_LEN]> {
    if hex.len() != 2 * KEY_LEN {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (hex_digit(*hi)? << 4) | hex_digit(*lo)?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Create `dir` (and its parents) with mode 0700 where missing; an existing
/// directory keeps its mode.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| KeyError::Io {
        what: "cannot create key directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Open a new file for writing, failing if it exists; mode 0600 on unix.
fn create_new_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Generate a key and publish it as `<key_id>.key` (mode 0600) complete or not at
/// all: written to a temporary file, then hard-linked into place (which, like
/// `create_new`, never replaces an existing file). Returns the path when this call
/// created it; losing the race to a concurrent start is not an error.
pub(crate) fn write_new_key(dir: &Path, key_id: &str) -> Result<Option<PathBuf>, KeyError> {
    let (_, bytes) = TokenKey::generate();
    let mut content = format!("{}\n", to_hex(&bytes)).into_bytes();
    let path = dir.join(format!("{key_id}.{ACTIVE_EXT}"));
    let temp = dir.join(format!(".{key_id}.{ACTIVE_EXT}.{}.{}.tmp", std::process::id(), rand::random::<u64>()));

    let write = |target: &Path| -> io::Result<()> {
        let mut file = create_new_private(target)?;
        file.write_all(&content)?;
        file.sync_all()
    };
    let published = write(&temp).and_then(|()| fs::hard_link(&temp, &path));
    let _ = fs::remove_file(&temp);
    let result = match published {
        Ok(()) => Ok(Some(path.clone())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        // No hard links here: write in place, still never overwriting.
        Err(_) => match write(&path) {
            Ok(()) => Ok(Some(path.clone())),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(source) => Err(KeyError::Io { what: "cannot write key file", path: path.clone(), source }),
        },
    };
    content.fill(0);
    result
}

#[cfg(test)]
mod tests;
