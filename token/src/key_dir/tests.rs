//! The key directory: file names, contents, permissions, Ed25519 leftovers and the
//! generated development key.

use std::fs;

use crate::error::KeyError;
use crate::keyring::{DEV_KEY_ID, KeyRing};
use crate::testing::{claims, key_hex, write, write_with_mode};

use super::KeyNotice;

fn startup_message(result: Result<KeyRing, KeyError>) -> String {
    match result {
        Err(error) => error.to_string(),
        Ok(ring) => panic!("expected a key error, got {ring:?}"),
    }
}

#[test]
fn malformed_key_files_are_named_but_not_quoted() {
    let cases: [(&str, String); 6] = [
        ("k1.key", "zz".repeat(32)),
        ("k1.key", key_hex(1)[..62].to_owned()),
        ("k1.key", format!(" {}", key_hex(1))),
        ("k1.key", format!("{}00", key_hex(1))),
        ("k2.retired", format!("{}\n{}", key_hex(2), key_hex(2))),
        ("k2.retired", "g".repeat(64)),
    ];
    for (name, content) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        if name != "k1.key" {
            write(dir.path(), "k1.key", &key_hex(1));
        }
        write(dir.path(), name, &content);
        let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
        assert!(message.contains(name), "{message}");
        assert!(!message.contains(content.trim()), "{message}");
    }
}

#[test]
fn bad_key_file_names_are_rejected() {
    for bad in ["no good.key", "a.b.retired", "abcdefghijklmnopq.key"] {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "k1.key", &key_hex(1));
        write(dir.path(), bad, &key_hex(2));
        let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
        assert!(message.contains(bad), "{message}");
    }
}

#[test]
fn a_key_file_must_be_a_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k1.key", &key_hex(1));
    fs::create_dir(dir.path().join("k2.retired")).expect("mkdir");
    let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
    assert!(message.contains("k2.retired") && message.contains("not a regular file"), "{message}");
}

#[test]
fn key_and_retired_of_one_key_id_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k1.key", &key_hex(1));
    write(dir.path(), "k1.retired", &key_hex(1));
    let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
    assert!(message.contains("k1.key") && message.contains("k1.retired"), "{message}");
}

#[cfg(unix)]
#[test]
fn key_files_others_may_access_refuse_start_up() {
    for name in ["k1.key", "k2.retired"] {
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o666] {
            let dir = tempfile::tempdir().expect("tempdir");
            write(dir.path(), "k1.key", &key_hex(1));
            write_with_mode(dir.path(), name, &key_hex(2), mode);
            let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
            let path = dir.path().join(name);
            assert!(message.contains(&path.display().to_string()), "mode {mode:o}: {message}");
            assert!(message.contains("chmod 600"), "mode {mode:o}: {message}");
            assert!(!message.contains(&key_hex(2)), "{message}");
        }
    }
    // Owner-only modes are fine, read-only ones included.
    for mode in [0o600, 0o400, 0o700] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_with_mode(dir.path(), "k1.key", &key_hex(1), mode);
        KeyRing::load_dir(dir.path(), "k1").unwrap_or_else(|e| panic!("mode {mode:o} refused: {e}"));
    }
}

#[test]
fn ed25519_public_key_files_are_ignored_with_a_notice() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k1.key", &key_hex(1));
    // Any content, any mode, any name: the file is never read.
    write_with_mode(dir.path(), "old.pub", "not even hex", 0o644);
    write_with_mode(dir.path(), "k1.pub", &key_hex(9), 0o644);
    let ring = KeyRing::load_dir(dir.path(), "k1").expect("loads");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1"]);
    let expected: Vec<KeyNotice> =
        ["k1.pub", "old.pub"].iter().map(|name| KeyNotice::IgnoredEd25519Key { path: dir.path().join(name) }).collect();
    assert_eq!(ring.notices(), expected);
    let shown = ring.notices()[1].to_string();
    assert!(shown.contains(&dir.path().join("old.pub").display().to_string()), "{shown}");
}

#[test]
fn dev_key_is_created_once_private_and_reused() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("keys").join("nested");
    let first = KeyRing::load_or_generate_dev(&dir).expect("generates");
    assert_eq!(first.active_key_id(), DEV_KEY_ID);
    let path = dir.join("dev-1.key");
    assert_eq!(first.notices(), [KeyNotice::GeneratedDevKey { path: path.clone() }]);
    let second = KeyRing::load_or_generate_dev(&dir).expect("reuses");
    assert_eq!(second.active_key_id(), DEV_KEY_ID);
    assert!(second.notices().is_empty(), "nothing generated the second time");
    assert_eq!(first.issue(&claims()), second.issue(&claims()));
    let names: Vec<_> = fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, ["dev-1.key"]);
    let content = fs::read_to_string(&path).expect("read");
    assert!(content.ends_with('\n') && content.trim_end().len() == 64, "64 hex characters and a newline");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("keys")), 0o700);
    }
}

#[test]
fn dev_uses_greatest_existing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.key", &key_hex(1));
    write(dir.path(), "c.key", &key_hex(3));
    write(dir.path(), "b.key", &key_hex(2));
    write(dir.path(), "z.retired", &key_hex(4));
    let ring = KeyRing::load_or_generate_dev(dir.path()).expect("loads");
    assert_eq!(ring.active_key_id(), "c");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["a", "b", "c", "z"]);
    assert!(!dir.path().join("dev-1.key").exists());
}
