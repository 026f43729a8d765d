//! Token key rotation (SPEC.md §2.5): a new active key, the old one verify-only
//! (`.retired`), then removed — across a restart and across the nodes of a cluster.
//! Tokens of a retired key keep working, new tokens carry the new key, a token of a
//! removed key is 400 `invalidCursor` and changes nothing; a key file others can read
//! refuses start-up naming the file.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pixstream::config::{ConfigFile, StartMode};
use reqwest::StatusCode;

use crate::harness::{
    ISPB, MULTI, TestCluster, TestNode, assert_problem, pulled, retry_until_created, samples, start_path,
};

/// Writes a random key `<kid>.<ext>` with mode 0600.
fn write_key(dir: &Path, kid: &str, ext: &str) {
    let hex: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    pixstream::certs::write_private(&dir.join(format!("{kid}.{ext}")), hex.as_bytes()).expect("write key");
}

/// The key id a `PI-Pull-Next` path's token names (byte 1 is its length).
fn key_id_of(next: &str) -> String {
    let token = next.rsplit('/').next().expect("token segment");
    let bytes = URL_SAFE_NO_PAD.decode(token).expect("base64url");
    String::from_utf8(bytes[2..2 + usize::from(bytes[1])].to_vec()).expect("ASCII key id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_across_restarts_keeps_old_tokens_until_their_key_is_removed() {
    let keys = tempfile::tempdir().expect("key dir");
    write_key(keys.path(), "a", "key");
    let key_dir = keys.path().to_path_buf();
    let mut node = TestNode::start(move |file: &mut ConfigFile| {
        file.tokens.key_dir = key_dir;
        file.tokens.active_key = "a".into();
    })
    .await;
    node.append(ISPB, &samples(ISPB, 4)).await;
    let first = pulled(node.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!(key_id_of(&first.next), "a");

    // b becomes the active key; a may only verify.
    write_key(keys.path(), "b", "key");
    std::fs::rename(keys.path().join("a.key"), keys.path().join("a.retired")).expect("retire a");
    node.config.active_key = "b".into();
    node.restart().await;
    let second = pulled(node.get(&first.next, MULTI).await).await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "a's token still confirms the batch");
    assert_eq!(node.watermark(ISPB), 5);
    assert_eq!(key_id_of(&second.next), "b", "new tokens carry the new key");

    // A token of a, kept from before: once a is removed it is refused, and nothing moves.
    node.append(ISPB, &samples(ISPB, 1)).await;
    let other = pulled(node.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!(other.messages.len(), 1);
    std::fs::remove_file(keys.path().join("a.retired")).expect("remove a");
    node.restart().await;
    let refused = node.get(&first.next, MULTI).await;
    assert_problem(refused, 400, "invalidCursor").await;
    assert_eq!(node.watermark(ISPB), 5, "the refused token confirmed nothing");
    assert_eq!(pulled(node.get(&other.next, MULTI).await).await.status, StatusCode::NO_CONTENT, "b's tokens work");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_of_the_new_key_is_valid_on_every_node() {
    let keys = tempfile::tempdir().expect("key dir");
    write_key(keys.path(), "a", "retired");
    write_key(keys.path(), "b", "key");
    let key_dir = keys.path().to_path_buf();
    let cluster = TestCluster::start_with(&["sp", "rj", "df"], 2, move |file| {
        file.tokens.key_dir = key_dir.clone();
        file.tokens.active_key = "b".into();
    })
    .await;
    retry_until_created(&cluster.api(1), ISPB, &samples(ISPB, 3)).await;
    let first = pulled(cluster.api(1).get(&start_path(ISPB), MULTI).await).await;
    assert_eq!((first.messages.len(), key_id_of(&first.next).as_str()), (3, "b"));
    let second = pulled(cluster.api(2).get(&first.next, MULTI).await).await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "node 2 takes node 1's token");
    let third = cluster.api(3).delete(&second.next).await;
    assert_eq!(third.status(), StatusCode::OK, "node 3 takes node 2's token");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_key_file_others_can_read_refuses_start_up_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("key dir");
    write_key(&keys, "a", "key");
    std::fs::set_permissions(keys.join("a.key"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let any = "127.0.0.1:0".parse().expect("addr");
    let mut file = ConfigFile::embedded(dir.path(), any, any);
    file.tokens.active_key = "a".into();
    let config = file.validate(1, StartMode::Bootstrap).expect("valid");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let error = pixstream::server::start(config, shutdown).await.err().expect("start-up refused");
    let text = error.to_string();
    assert!(text.contains("a.key") && text.contains("chmod 600"), "the error names the file and the fix: {text}");
}
