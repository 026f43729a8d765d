//! The key ring: issuing, verifying, rotation through retired keys, revocation by
//! removal, and the development key.

use std::fs;

use super::*;
use crate::testing::{claims, key_hex, key_id_of, write};

fn reason(result: Result<TokenClaims, InvalidToken>) -> &'static str {
    match result {
        Err(InvalidToken(reason)) => reason,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

fn startup_message(result: Result<KeyRing, KeyError>) -> String {
    match result {
        Err(error) => error.to_string(),
        Ok(ring) => panic!("expected a key error, got {ring:?}"),
    }
}

fn ring(key_id: &str, seed: u8) -> KeyRing {
    KeyRing::new(key_id, TokenKey::from_bytes(&[seed; 32])).expect("ring")
}

#[test]
fn loads_issues_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k1.key", &format!("{}\n", key_hex(1)));
    write(dir.path(), "README.txt", "not a key");
    write(dir.path(), "notes", "neither");
    let ring = KeyRing::load_dir(dir.path(), "k1").expect("loads");
    assert_eq!(ring.active_key_id(), "k1");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k1"]);
    assert!(ring.notices().is_empty());
    let token = ring.issue(&claims());
    assert_eq!(key_id_of(&token), "k1");
    assert_eq!(ring.verify(&token).expect("verifies"), claims());
    assert_eq!(ring.verify_for(&token, b"32074986").expect("verifies"), claims());
    let same_key = KeyRing::new("k1", TokenKey::from_bytes(&[1; 32])).expect("ring");
    assert_eq!(same_key.issue(&claims()), token, "the file holds exactly those key bytes");
}

#[test]
fn identical_claims_give_identical_tokens() {
    let ring = ring("k1", 1);
    assert_eq!(ring.issue(&claims()), ring.issue(&claims()));
    let other = TokenClaims { generation: 6, ..claims() };
    assert_ne!(ring.issue(&claims()), ring.issue(&other));
}

#[test]
fn foreign_ispb_is_rejected() {
    let ring = ring("k1", 1);
    let token = ring.issue(&claims());
    assert_eq!(reason(ring.verify_for(&token, b"99999A03")), "token issued for another ISPB");
}

#[test]
fn unknown_key_id_is_rejected() {
    let stranger = ring("k2", 1);
    assert_eq!(reason(ring("k1", 1).verify(&stranger.issue(&claims()))), "token signed by unknown key");
}

#[test]
fn same_key_id_with_another_key_is_rejected() {
    let impostor = ring("k1", 2);
    assert_eq!(reason(ring("k1", 1).verify(&impostor.issue(&claims()))), "bad token MAC");
}

#[test]
fn rotation_keeps_retired_tokens_and_removal_revokes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "old.key", &key_hex(1));
    let old_token = KeyRing::load_dir(dir.path(), "old").expect("loads").issue(&claims());

    // Rotate: the old key becomes verify-only, a new key signs.
    fs::rename(dir.path().join("old.key"), dir.path().join("old.retired")).expect("rename");
    write(dir.path(), "new.key", &format!("{}  \r\n", key_hex(2)));
    let ring = KeyRing::load_dir(dir.path(), "new").expect("loads");
    assert_eq!(ring.active_key_id(), "new");
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["new", "old"]);
    assert_eq!(ring.verify(&old_token).expect("retired key verifies"), claims());
    let new_token = ring.issue(&claims());
    assert_eq!(key_id_of(&new_token), "new");
    assert_eq!(ring.verify(&new_token).expect("verifies"), claims());

    // Retire for good: the old key's tokens die, the new key's live on.
    fs::remove_file(dir.path().join("old.retired")).expect("remove");
    let ring = KeyRing::load_dir(dir.path(), "new").expect("reloads");
    assert_eq!(reason(ring.verify(&old_token)), "token signed by unknown key");
    assert_eq!(ring.verify(&new_token).expect("verifies"), claims());
}

#[test]
fn retired_key_verifies_but_never_signs() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.retired", &key_hex(1));
    write(dir.path(), "b.key", &key_hex(2));
    let message = startup_message(KeyRing::load_dir(dir.path(), "a"));
    assert!(message.contains("a.retired") && message.contains("retired key only verifies"), "{message}");

    let ring = KeyRing::load_dir(dir.path(), "b").expect("loads");
    let token_of_a = self::ring("a", 1).issue(&claims());
    assert_eq!(ring.verify(&token_of_a).expect("a retired key verifies"), claims());
    let issued = ring.issue(&claims());
    assert_eq!(key_id_of(&issued), "b", "only the active key signs");
    assert_ne!(issued, token_of_a);

    // The development fallback never picks a retired key either.
    fs::remove_file(dir.path().join("b.key")).expect("remove");
    let dev = KeyRing::load_or_generate_dev(dir.path()).expect("generates");
    assert_eq!(dev.active_key_id(), DEV_KEY_ID);
    assert_eq!(dev.key_ids().collect::<Vec<_>>(), ["a", DEV_KEY_ID]);
    assert_eq!(key_id_of(&dev.issue(&claims())), DEV_KEY_ID);
}

#[test]
fn non_active_keys_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.key", &key_hex(1));
    write(dir.path(), "b.key", &key_hex(2));
    let token_a = KeyRing::load_dir(dir.path(), "a").expect("loads").issue(&claims());
    let ring_b = KeyRing::load_dir(dir.path(), "b").expect("loads");
    assert_eq!(ring_b.verify(&token_a).expect("verifies"), claims());
}

#[test]
fn active_key_must_have_a_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k2.key", &key_hex(2));
    let message = startup_message(KeyRing::load_dir(dir.path(), "k1"));
    assert!(message.contains("k1.key"), "{message}");
    let message = startup_message(KeyRing::load_dir(dir.path(), "bad.id"));
    assert!(message.contains("key id"), "{message}");
}

#[test]
fn debug_does_not_show_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "k1.key", &key_hex(0xab));
    let ring = KeyRing::load_dir(dir.path(), "k1").expect("loads");
    let shown = format!("{ring:?}");
    assert!(shown.contains("k1"), "{shown}");
    assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
}
