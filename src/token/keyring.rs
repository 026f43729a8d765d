//! The key ring: one active Ed25519 signing key plus verify-only keys, all named by
//! key id and loaded from a directory of key files (SPEC.md §2.5). It issues and
//! verifies `PI-Pull-Next` tokens.
//!
//! Key directory: `<kid>.key` holds the 32-byte secret seed as 64 hex characters (the
//! key signs when it is the active one and always verifies); `<kid>.pub` holds a 32-byte
//! public key as 64 hex characters (a retired, verify-only key). Trailing whitespace is
//! allowed; other files are ignored. Rotation: add `new.key`, make it active, and later
//! replace `old.key` by `old.pub`; deleting a key's files invalidates its tokens.
//! Error messages name files, never their content.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::claims::TokenClaims;
use super::codec;
use super::codec::InvalidToken;
use super::error::KeyError;
use super::recent::RecentTokens;

/// Key id of the key `load_or_generate_dev` creates in an empty directory.
pub const DEV_KEY_ID: &str = "dev-1";

const SECRET_EXT: &str = "key";
const PUBLIC_EXT: &str = "pub";
/// Key files are 64 hex characters plus whitespace; anything far larger is malformed.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Signs new tokens with the active key and verifies tokens of every known key.
pub struct KeyRing {
    active_key_id: String,
    signing_key: SigningKey,
    /// Every key that verifies, the active one included.
    verifying_keys: BTreeMap<String, VerifyingKey>,
    /// Tokens signed or verified lately: recognised without another verification.
    recent: RecentTokens,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_key_id", &self.active_key_id)
            .field("key_ids", &self.verifying_keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring holding only `signing_key`, active under `key_id` (tests, tools).
    pub fn new(key_id: &str, signing_key: SigningKey) -> Result<KeyRing, KeyError> {
        check_key_id(key_id)?;
        let verifying_keys = BTreeMap::from([(key_id.to_owned(), signing_key.verifying_key())]);
        Ok(KeyRing { active_key_id: key_id.to_owned(), signing_key, verifying_keys, recent: RecentTokens::default() })
    }

    /// Load every key file of `dir`; `active_key_id` must have a `.key` file.
    pub fn load_dir(dir: &Path, active_key_id: &str) -> Result<KeyRing, KeyError> {
        check_key_id(active_key_id)?;
        let mut secrets = BTreeMap::new();
        let mut publics = BTreeMap::new();
        for file in key_files(dir)? {
            let bytes = read_hex_32(&file.path)?;
            if file.secret {
                check_private_mode(&file.path);
                secrets.insert(file.key_id, SigningKey::from_bytes(&bytes));
            } else {
                publics.insert(file.key_id, parse_public(&file.path, &bytes)?);
            }
        }
        let mut verifying_keys = BTreeMap::new();
        for (key_id, secret) in &secrets {
            let public = secret.verifying_key();
            if publics.get(key_id).is_some_and(|p| *p != public) {
                return Err(KeyError::Disagree { key_id: key_id.clone(), dir: dir.to_path_buf() });
            }
            verifying_keys.insert(key_id.clone(), public);
        }
        for (key_id, public) in publics {
            verifying_keys.entry(key_id).or_insert(public);
        }
        let signing_key = secrets
            .remove(active_key_id)
            .ok_or_else(|| KeyError::NoActiveSecret { key_id: active_key_id.to_owned(), dir: dir.to_path_buf() })?;
        Ok(KeyRing {
            active_key_id: active_key_id.to_owned(),
            signing_key,
            verifying_keys,
            recent: RecentTokens::default(),
        })
    }

    /// The embedded default: when `dir` holds no `.key` file, create it and a fresh
    /// `dev-1.key` (never overwriting one a concurrent start wrote), then load with the
    /// lexicographically greatest `.key` id active.
    pub fn load_or_generate_dev(dir: &Path) -> Result<KeyRing, KeyError> {
        create_private_dir(dir)?;
        if !key_files(dir)?.iter().any(|f| f.secret) {
            write_new_secret(dir, DEV_KEY_ID)?;
        }
        let active = key_files(dir)?
            .into_iter()
            .filter(|f| f.secret)
            .map(|f| f.key_id)
            .max()
            .ok_or_else(|| KeyError::NoSecret { dir: dir.to_path_buf() })?;
        KeyRing::load_dir(dir, &active)
    }

    /// Sign `claims` with the active key. Deterministic: the same claims always give
    /// the same token (idempotent retries rely on it), so a token signed lately for
    /// the same claims is returned without signing again.
    pub fn issue(&self, claims: &TokenClaims) -> String {
        if let Some(token) = self.recent.token(claims) {
            return token;
        }
        let token = codec::encode(&self.active_key_id, &self.signing_key, claims);
        self.recent.remember_issued(&token, claims);
        token
    }

    /// Decode and verify a token signed by any key of the ring. A token this ring
    /// issued or verified lately is recognised by exact match instead.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, InvalidToken> {
        if let Some(claims) = self.recent.claims(token) {
            return Ok(claims);
        }
        let claims = codec::decode(token, |key_id| self.verifying_keys.get(key_id))?;
        self.recent.remember_verified(token, &claims);
        Ok(claims)
    }

    /// [`verify`](Self::verify), and reject a token issued for another ISPB.
    pub fn verify_for(&self, token: &str, ispb: &[u8; 8]) -> Result<TokenClaims, InvalidToken> {
        let claims = self.verify(token)?;
        if claims.ispb != *ispb {
            return Err(InvalidToken("token issued for another ISPB"));
        }
        Ok(claims)
    }

    /// Key id of the signing key.
    pub fn active_key_id(&self) -> &str {
        &self.active_key_id
    }

    /// Ids of every key that verifies, sorted, the active one included.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.verifying_keys.keys().map(String::as_str)
    }
}

fn check_key_id(key_id: &str) -> Result<(), KeyError> {
    if codec::is_valid_key_id(key_id) { Ok(()) } else { Err(KeyError::BadKeyId { key_id: key_id.to_owned() }) }
}

/// One `<kid>.key` or `<kid>.pub` file.
struct KeyFile {
    key_id: String,
    path: PathBuf,
    secret: bool,
}

/// The key files of `dir`, sorted by name; other files are ignored.
fn key_files(dir: &Path) -> Result<Vec<KeyFile>, KeyError> {
    let unreadable =
        |source: io::Error| KeyError::Io { what: "cannot read key directory", path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension()) else {
            continue;
        };
        let secret = match ext.to_str() {
            Some(SECRET_EXT) => true,
            Some(PUBLIC_EXT) => false,
            _ => continue,
        };
        if !codec::is_valid_key_id(stem) {
            return Err(KeyError::BadFileName { path });
        }
        if !path.is_file() {
            return Err(KeyError::BadFile { path, why: "not a regular file" });
        }
        files.push(KeyFile { key_id: stem.to_owned(), path, secret });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Read a file of 64 hex characters (plus trailing whitespace) as 32 bytes.
fn read_hex_32(path: &Path) -> Result<[u8; 32], KeyError> {
    let malformed = || KeyError::BadFile {
        path: path.to_path_buf(),
        why: "expected 64 hex characters (32 bytes) and nothing else",
    };
    let mut content = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut content))
        .map_err(|source| KeyError::Io { what: "cannot read key file", path: path.to_path_buf(), source })?;
    let parsed = parse_hex_32(content.trim_ascii_end());
    content.fill(0);
    parsed.ok_or_else(malformed)
}

fn parse_hex_32(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
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

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn parse_public(path: &Path, bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    match VerifyingKey::from_bytes(bytes) {
        Ok(key) if !key.is_weak() => Ok(key),
        _ => Err(KeyError::BadFile { path: path.to_path_buf(), why: "not a usable Ed25519 public key" }),
    }
}

/// Warn when a secret key file is readable by group or others.
fn check_private_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "secret key file is readable by group or others");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
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

/// Generate a key and publish it as `<key_id>.key` complete or not at all: written to a
/// temporary file, then hard-linked into place (which, like `create_new`, never
/// replaces an existing file). Losing the race to a concurrent start is not an error.
fn write_new_secret(dir: &Path, key_id: &str) -> Result<(), KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let content = format!("{}\n", to_hex(&key.to_bytes()));
    let path = dir.join(format!("{key_id}.{SECRET_EXT}"));
    let temp = dir.join(format!(".{key_id}.{SECRET_EXT}.{}.{}.tmp", std::process::id(), rand::random::<u64>()));
    let failed = |source: io::Error| KeyError::Io { what: "cannot write key file", path: path.clone(), source };

    let write = |target: &Path| -> io::Result<()> {
        let mut file = create_new_private(target)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()
    };
    let published = write(&temp).and_then(|()| fs::hard_link(&temp, &path));
    let _ = fs::remove_file(&temp);
    let result = match published {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // No hard links here: write in place, still never overwriting.
        Err(_) => match write(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other.map_err(failed),
        },
    };
    if result.is_ok() {
        tracing::warn!(file = %path.display(), "using a generated development signing key");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::StreamKind;

    fn claims() -> TokenClaims {
        TokenClaims {
            ispb: *b"32074986",
            shard: 1,
            stream: 77,
            generation: 5,
            issued_at_ms: 1_750_000_000_000,
            kind: StreamKind::Live,
        }
    }

    fn write(dir: &Path, name: &str, content: &str) {
        fs::write(dir.join(name), content).expect("write key file");
    }

    fn seed_hex(seed: u8) -> String {
        to_hex(&[seed; 32])
    }

    fn public_hex(seed: u8) -> String {
        to_hex(SigningKey::from_bytes(&[seed; 32]).verifying_key().as_bytes())
    }

    fn reason(result: Result<TokenClaims, InvalidToken>) -> &'static str {
        match result {
            Err(InvalidToken(reason)) => reason,
            other => panic!("expected InvalidCursor, got {other:?}"),
        }
    }

    fn startup_message(result: Result<KeyRing, KeyError>) -> String {
        match result {
            Err(error) => error.to_string(),
            Ok(ring) => panic!("expected a key error, got {ring:?}"),
        }
    }

    #[test]
    fn loads_issues_and_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "k1.key", &format!("{}\n", seed_hex(1)));
        write(dir.path(), "README.txt", "not a key");
        write(dir.path(), "notes", "neither");
        let ring = KeyRing::load_dir(dir.path(), "k1").expect("loads");
        assert_eq!(ring.active_key_id(), "k1");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1"]);
        let token = ring.issue(&claims());
        assert_eq!(ring.verify(&token).expect("verifies"), claims());
        assert_eq!(ring.verify_for(&token, b"32074986").expect("verifies"), claims());
    }

    #[test]
    fn identical_claims_give_identical_tokens() {
        let ring = KeyRing::new("k1", SigningKey::from_bytes(&[1; 32])).expect("ring");
        assert_eq!(ring.issue(&claims()), ring.issue(&claims()));
        let other = TokenClaims { generation: 6, ..claims() };
        assert_ne!(ring.issue(&claims()), ring.issue(&other));
    }

    #[test]
    fn foreign_ispb_is_rejected() {
        let ring = KeyRing::new("k1", SigningKey::from_bytes(&[1; 32])).expect("ring");
        let token = ring.issue(&claims());
        assert_eq!(reason(ring.verify_for(&token, b"99999A03")), "token issued for another ISPB");
    }

    #[test]
    fn unknown_key_id_is_rejected() {
        let ring = KeyRing::new("k1", SigningKey::from_bytes(&[1; 32])).expect("ring");
        let stranger = KeyRing::new("k2", SigningKey::from_bytes(&[1; 32])).expect("ring");
        assert_eq!(reason(ring.verify(&stranger.issue(&claims()))), "token signed by unknown key");
    }

    #[test]
    fn same_key_id_with_another_key_is_rejected() {
        let ring = KeyRing::new("k1", SigningKey::from_bytes(&[1; 32])).expect("ring");
        let impostor = KeyRing::new("k1", SigningKey::from_bytes(&[2; 32])).expect("ring");
        assert_eq!(reason(ring.verify(&impostor.issue(&claims()))), "bad token signature");
    }

    #[test]
    fn rotation_keeps_retired_tokens_and_removal_revokes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "old.key", &seed_hex(1));
        let old_token = KeyRing::load_dir(dir.path(), "old").expect("loads").issue(&claims());

        // Rotate: the old key becomes verify-only, a new key signs.
        fs::remove_file(dir.path().join("old.key")).expect("remove");
        write(dir.path(), "old.pub", &format!("{}  \r\n", public_hex(1)));
        write(dir.path(), "new.key", &seed_hex(2));
        let ring = KeyRing::load_dir(dir.path(), "new").expect("loads");
        assert_eq!(ring.active_key_id(), "new");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(ring.verify(&old_token).expect("retired key verifies"), claims());
        let new_token = ring.issue(&claims());
        assert_ne!(new_token, old_token);
        assert_eq!(ring.verify(&new_token).expect("verifies"), claims());

        // Retire for good: the old key's tokens die, the new key's live on.
        fs::remove_file(dir.path().join("old.pub")).expect("remove");
        let ring = KeyRing::load_dir(dir.path(), "new").expect("reloads");
        assert_eq!(reason(ring.verify(&old_token)), "token signed by unknown key");
        assert_eq!(ring.verify(&new_token).expect("verifies"), claims());
    }

    #[test]
    fn non_active_secret_keys_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.key", &seed_hex(1));
        write(dir.path(), "b.key", &seed_hex(2));
        let token_a = KeyRing::load_dir(dir.path(), "a").expect("loads").issue(&claims());
        let ring_b = KeyRing::load_dir(dir.path(), "b").expect("loads");
        assert_eq!(ring_b.verify(&token_a).expect("verifies"), claims());
    }

    #[test]
    fn active_key_must_have_a_secret_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "k1.pub", &public_hex(1));
        let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
        assert!(message.contains("k1.key"), "{message}");
        let message = startup_message(KeyRing::load_dir(dir.path(), "bad.id"));
        assert!(message.contains("key id"), "{message}");
    }

    #[test]
    fn malformed_key_files_are_named_but_not_quoted() {
        let cases: [(&str, String); 6] = [
            ("k1.key", "zz".repeat(32)),
            ("k1.key", seed_hex(1)[..62].to_owned()),
            ("k1.key", format!(" {}", seed_hex(1))),
            ("k1.key", format!("{}00", seed_hex(1))),
            // y = 2 is not the y-coordinate of any curve point.
            ("k2.pub", format!("02{}", "00".repeat(31))),
            ("k2.pub", "00".repeat(32)),
        ];
        for (name, content) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            if name != "k1.key" {
                write(dir.path(), "k1.key", &seed_hex(1));
            }
            write(dir.path(), name, &content);
            let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
            assert!(message.contains(name), "{message}");
            assert!(!message.contains(content.trim()), "{message}");
        }
    }

    #[test]
    fn bad_key_file_names_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "k1.key", &seed_hex(1));
        write(dir.path(), "no good.key", &seed_hex(2));
        let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
        assert!(message.contains("no good.key"), "{message}");
    }

    #[test]
    fn disagreeing_secret_and_public_files_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "k1.key", &seed_hex(1));
        write(dir.path(), "k1.pub", &public_hex(2));
        let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
        assert!(message.contains("k1.pub"), "{message}");
        write(dir.path(), "k1.pub", &public_hex(1));
        KeyRing::load_dir(dir.path(), "k1").expect("agreeing files load");
    }

    #[test]
    fn dev_key_is_created_once_and_reused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("keys").join("nested");
        let first = KeyRing::load_or_generate_dev(&dir).expect("generates");
        assert_eq!(first.active_key_id(), DEV_KEY_ID);
        let second = KeyRing::load_or_generate_dev(&dir).expect("reuses");
        assert_eq!(second.active_key_id(), DEV_KEY_ID);
        assert_eq!(first.issue(&claims()), second.issue(&claims()));
        let names: Vec<_> = fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["dev-1.key"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("dev-1.key")).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn dev_uses_greatest_existing_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.key", &seed_hex(1));
        write(dir.path(), "c.key", &seed_hex(3));
        write(dir.path(), "b.key", &seed_hex(2));
        write(dir.path(), "z.pub", &public_hex(4));
        let ring = KeyRing::load_or_generate_dev(dir.path()).expect("loads");
        assert_eq!(ring.active_key_id(), "c");
        assert!(!dir.path().join("dev-1.key").exists());
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let ring = KeyRing::new("k1", SigningKey::from_bytes(&[1; 32])).expect("ring");
        let shown = format!("{ring:?}");
        assert!(shown.contains("k1"), "{shown}");
        assert!(!shown.contains(&seed_hex(1)), "{shown}");
    }
}
