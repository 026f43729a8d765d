//! `PI-Pull-Next` tokens (SPEC §2.5): anything but a token this appliance issued for
//! this ISPB is 400 invalidCursor, and such a request changes nothing.

use reqwest::StatusCode;
use wire::paths::pull_next_path;

use crate::harness::*;

/// A different base64url character at `index`.
fn flip(token: &str, index: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_garbage_and_foreign_tokens_are_invalid_cursor() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 15)).await;
    node.append(OTHER_ISPB, &messages(OTHER_ISPB, 1)).await;
    let mine = node.start_stream(ISPB, MULTI).await;
    let theirs = node.start_stream(OTHER_ISPB, MULTI).await;
    let token = mine.token().to_owned();
    let before = node.tenant(ISPB).expect("tenant");

    let len = token.len();
    let mut bad: Vec<(String, String)> = vec![
        ("first character flipped".into(), flip(&token, 0)),
        ("middle character flipped".into(), flip(&token, len / 2)),
        ("signature character flipped".into(), flip(&token, len - 5)),
        ("last character dropped".into(), token[..len - 1].to_owned()),
        ("truncated by 10".into(), token[..len - 10].to_owned()),
        ("truncated to half".into(), token[..len / 2].to_owned()),
        ("one character added".into(), format!("{token}A")),
        ("four characters added".into(), format!("{token}AAAA")),
        ("garbage".into(), "garbage".into()),
        ("base64url of nothing useful".into(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
        ("over 256 characters".into(), "A".repeat(300)),
        ("not base64url".into(), "abc.def~ghi".into()),
    ];
    bad.push(("other ISPB's token".into(), theirs.token().to_owned()));
    for (what, forged) in &bad {
        let get = node.get(&pull_next_path(ISPB, forged), MULTI).await;
        let problem = assert_problem(get, 400, "invalidCursor").await;
        assert!(!problem.detail.contains(forged.as_str()) || forged.len() < 12, "{what}: detail echoes the token");
        let delete = node.delete(&pull_next_path(ISPB, forged)).await;
        assert_problem(delete, 400, "invalidCursor").await;
    }
    // My valid token on the other ISPB's path.
    assert_problem(node.get(&pull_next_path(OTHER_ISPB, &token), MULTI).await, 400, "invalidCursor").await;
    assert_problem(node.delete(&pull_next_path(OTHER_ISPB, &token)).await, 400, "invalidCursor").await;

    let mut after = node.tenant(ISPB).expect("tenant");
    // Invalid tokens are audited (rate-bounded, tests/it/audit.rs); delivery state stays.
    after.audit = before.audit.clone();
    assert_eq!(after, before, "no invalid token changed the tenant's delivery state");
    assert_eq!(node.tenant(OTHER_ISPB).expect("other tenant").watermark, 1, "nor the other ISPB's");
    let next = node.follow(&mine.next, MULTI).await;
    assert_eq!(next.seqs(), (11..=15).collect::<Vec<_>>(), "the genuine token still continues the stream");
    node.stop().await;
}

/// `PI-Pull-Next` is a stream path the client uses verbatim, and every read that
/// hands out messages moves it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_opaque_paths_used_verbatim() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 2)).await;
    let first = node.start_stream(ISPB, SINGLE).await;
    assert!(first.next.starts_with(&pull_next_path(ISPB, "")));
    assert!(first.token().len() <= 256);
    let second = node.follow(&first.next, SINGLE).await;
    assert_ne!(first.next, second.next, "each read with messages issues a new token");
    assert_eq!(second.status, StatusCode::OK);
    node.stop().await;
}
