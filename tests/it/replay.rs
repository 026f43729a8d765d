//! Compliance replay streams (SPEC.md §4): an operator opens one from a seq or a
//! time (`pixstream admin replay open`), the PSP reads it with the ordinary GET and
//! token scheme, every message marked `Pix-Replay: true`; it confirms nothing, has
//! its own slots outside the live ones, ends with 204 without `PI-Pull-Next`, and
//! holds the purge of what it has yet to read. Bad calls get a clear error.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

async fn open(api: &Api, ispb: &str, body: &Value) -> reqwest::Response {
    api.admin(Method::POST, &wire::paths::tenant_replays_path(ispb), &body.to_string()).await
}

async fn opened(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::CREATED);
    serde_json::from_str(&response.text().await.expect("body")).expect("json")
}

/// Reads a replay from `path` to its end: (seqs per answer, `Pix-Replay` marks, the last answer).
async fn read_to_end(api: &Api, mut path: String) -> (Vec<Vec<u64>>, usize, reqwest::Response) {
    let mut batches = Vec::new();
    let mut marks = 0;
    loop {
        let answer = api.get(&path, MULTI).await;
        if answer.status() != StatusCode::OK {
            return (batches, marks, answer);
        }
        let next = header(answer.headers(), "pi-pull-next").expect("a 200 continues");
        let content_type = header(answer.headers(), "content-type").expect("content type");
        let body = answer.bytes().await.expect("body");
        marks += String::from_utf8_lossy(&body).matches("Pix-Replay: true").count();
        batches.push(parse_multipart(&content_type, &body).iter().map(|m| m.seq).collect());
        path = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_rereads_delivered_messages_confirms_nothing_and_ends_with_204() {
    let cluster =
        TestCluster::start_with(&["sp1", "sp2", "rj1"], 2, |f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS)
            .await;
    let via = cluster.api(cluster.follower_of(cluster.shard_of(ISPB)));
    retry_until_created(&via, ISPB, &messages(ISPB, 25)).await;
    let (delivered, _, live) = via.drain(ISPB, MULTI).await;
    assert_eq!(delivered.len(), 25);
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!(state.watermark, 26, "the live stream confirmed everything");

    // Opened through a follower from seq 5: seqs 5..=25 in batches of 10, marked.
    let first = opened(open(&via, ISPB, &json!({"from_seq": 5})).await).await;
    assert_eq!((first["from_seq"].as_u64(), first["to_seq"].as_u64()), (Some(5), Some(25)));
    let path = first["pull_next"].as_str().expect("a path").to_owned();
    check_pull_next(&path);
    let (batches, marks, end) = read_to_end(&via, path.clone()).await;
    assert_eq!(batches, vec![(5..=14).collect::<Vec<_>>(), (15..=24).collect(), vec![25]]);
    assert_eq!(marks, 21, "every replayed message is marked Pix-Replay: true");
    assert_eq!(end.status(), StatusCode::NO_CONTENT);
    assert!(header(end.headers(), "pi-pull-next").is_none(), "the replay is over: nothing continues it");
    let after = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!((after.watermark, after.backlog(), after.next_hand), (26, 0, 26), "a replay confirms nothing");
    assert!(after.replays.is_empty(), "the replay closed at its end");
    assert_problem(via.get(&path, MULTI).await, 410, "streamClosed").await;

    // Its own slots (2), beside the live stream's; DELETE frees one.
    let a = opened(open(&via, ISPB, &json!({"from_seq": 1})).await).await;
    let b = opened(open(&via, ISPB, &json!({"from_time": "2020-01-01T00:00:00Z"})).await).await;
    assert_eq!(b["from_seq"], 1, "the first message at or after the time");
    assert_problem(open(&via, ISPB, &json!({"from_seq": 1})).await, 429, "tooManyStreams").await;
    let single = via.get(a["pull_next"].as_str().expect("path"), None).await;
    assert_eq!(single.status(), StatusCode::OK);
    assert_eq!(header(single.headers(), "pix-replay").as_deref(), Some("true"));
    assert_eq!(header(single.headers(), "pix-sequence").as_deref(), Some("1"));
    let closed = via.delete(b["pull_next"].as_str().expect("path")).await;
    assert_eq!(closed.status(), StatusCode::OK);
    opened(open(&via, ISPB, &json!({"from_seq": 20})).await).await;
    let next_live = via.get(&live.next, MULTI).await;
    assert_eq!(next_live.status(), StatusCode::NO_CONTENT, "the live stream goes on untouched");

    // Bad calls.
    for (body, detail) in [
        (json!({"from_seq": 99}), "to 26 (the next seq)"),
        (json!({}), "from_seq or from_time"),
        (json!({"from_seq": 1, "from_time": "2026-12-03T10:00:00Z"}), "from_seq or from_time"),
        (json!({"from_time": "yesterday"}), "not UTC"),
    ] {
        let problem = assert_problem(open(&via, ISPB, &body).await, 400, "invalidBody").await;
        assert!(problem.detail.contains(detail), "{body}: {}", problem.detail);
    }
    assert_problem(open(&via, "11111111", &json!({"from_seq": 1})).await, 404, "tenantNotFound").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn pixstream_admin_replay_open_prints_the_path_the_psp_reads() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 3)).await;
    let args = ["admin", "replay", "open", "--ispb", ISPB, "--from-seq", "2", "--url", &node.internal];
    let (ok, text) = run_cli(&args).await;
    assert!(ok && text.contains("seqs 2 to 3"), "{text}");
    let path = text.lines().find_map(|l| l.strip_prefix("the PSP reads it from: ")).expect("the path").to_owned();
    let answer = node.get(&path, MULTI).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let (ok, text) = run_cli(&["admin", "replay", "open", "--ispb", ISPB, "--url", &node.internal]).await;
    assert!(!ok && text.contains("from-seq"), "a start is required: {text}");
    node.stop().await;
}
