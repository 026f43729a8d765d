//! Streams in parallel (SPEC §2.3, §2.4): the 6-slot limit under a race, six streams
//! sharing a backlog with every message outstanding in at most one of them, and two
//! requests on the same stream at once.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;

use crate::harness::*;

/// 30 simultaneous `stream/start`: exactly 6 open, the rest 429 tooManyStreams with
/// `Retry-After` and `Pix-Stream-Slots: 6/6`; then the 6 streams drain a 300-message
/// backlog concurrently and every message is delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_slots_hold_under_a_race_and_six_streams_share_the_backlog_exactly_once() {
    let node = TestNode::start(|f| f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS).await;
    let bodies = messages(ISPB, 300);
    let appended = node.append_all(ISPB, &bodies).await;
    assert_eq!(appended.last().map(|a| a.seq), Some(300));

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let api = node.api.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                api.get(&start_path(ISPB), MULTI).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let response = task.await.expect("task");
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => winners.push(pulled(response).await),
            StatusCode::TOO_MANY_REQUESTS => {
                let problem = assert_problem(response, 429, "tooManyStreams").await;
                assert!(retry_after(&problem.headers) >= 1, "Retry-After is a positive integer");
                assert_eq!(header(&problem.headers, "pix-stream-slots").as_deref(), Some("6/6"));
                refused += 1;
            }
            other => panic!("unexpected {other} to a racing stream/start"),
        }
    }
    assert_eq!((winners.len(), refused), (6, 24), "exactly 6 streams open, never a 7th");
    assert_eq!(node.open_streams(ISPB), 6);
    assert_problem(node.get(&start_path(ISPB), MULTI).await, 429, "tooManyStreams").await;

    // Each winner now follows its own PI-Pull-Next until 204, all at once.
    let tasks: Vec<_> = winners
        .into_iter()
        .map(|first| {
            let api = node.api.clone();
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut pull = first;
                while pull.status == StatusCode::OK {
                    received.extend(pull.messages.clone());
                    pull = api.follow(&pull.next, MULTI).await;
                }
                (received, pull.next)
            })
        })
        .collect();
    let mut by_seq: BTreeMap<u64, Msg> = BTreeMap::new();
    let mut last_tokens = Vec::new();
    for (stream, task) in tasks.into_iter().enumerate() {
        let (received, last) = task.await.expect("task");
        let seqs: Vec<u64> = received.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "stream {stream}: seqs ascend across its batches: {seqs:?}");
        for m in received {
            let seq = m.seq;
            assert!(by_seq.insert(seq, m).is_none(), "seq {seq} was delivered to two streams");
        }
        last_tokens.push(last);
    }
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (1..=300).collect::<Vec<_>>(), "every message delivered");
    for (i, (seq, m)) in by_seq.iter().enumerate() {
        assert_eq!(m.resource_id, appended[i].resource_id, "seq {seq}: id");
        assert_eq!(m.body, bodies[i].as_bytes(), "seq {seq}: body");
    }
    let tenant = node.tenant(ISPB).expect("tenant");
    assert_eq!(tenant.watermark, 301, "all confirmed");

    for path in &last_tokens {
        assert_eq!(node.delete(path).await.status(), StatusCode::OK);
    }
    assert_eq!(node.open_streams(ISPB), 0);
    let fresh = node.start_stream(ISPB, MULTI).await;
    assert_eq!(fresh.slots, "1/6", "slots freed by DELETE");
    node.stop().await;
}

/// Slots are per ISPB: a full ISPB does not stop another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_counted_per_ispb() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 50).await;
    let mut paths = Vec::new();
    for i in 1..=6 {
        let pull = node.start_stream(ISPB, MULTI).await;
        assert_eq!(pull.slots, format!("{i}/6"));
        paths.push(pull.next);
    }
    assert_problem(node.get(&start_path(ISPB), MULTI).await, 429, "tooManyStreams").await;
    let other = node.start_stream(OTHER_ISPB, MULTI).await;
    assert_eq!(other.slots, "1/6");
    node.stop().await;
}

/// Two requests with the same current token at once never both advance the stream:
/// one wins and the other gets 409 streamBusy, or both carry the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_token_twice_at_once_never_advances_twice() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 2_000;
        f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let first = node.start_stream(ISPB, MULTI).await;
    assert_eq!(first.seqs(), vec![1]);

    // Five requests with the current token; the queue is empty, so they overlap in
    // the long poll until a message arrives.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let api = node.api.clone();
            let path = first.next.clone();
            tokio::spawn(async move { api.get(&path, MULTI).await })
        })
        .collect();
    node.wait_until(timing::STEP, "batch 1 confirmed by the winner", |n| n.watermark(ISPB) == 2).await;
    let appended = node.append(ISPB, &messages(ISPB, 3)).await;

    let mut batches = Vec::new();
    let mut busy = 0;
    for task in tasks {
        let response = task.await.expect("task");
        if response.status() == StatusCode::CONFLICT {
            assert_problem(response, 409, "streamBusy").await;
            busy += 1;
        } else {
            let pull = pulled(response).await;
            assert_eq!(pull.status, StatusCode::OK, "the winner gets the new messages");
            batches.push((pull.seqs(), pull.next.clone()));
        }
    }
    assert!(!batches.is_empty(), "one request wins");
    let distinct: BTreeSet<_> = batches.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        1,
        "the stream advanced once: every 200 carries the same batch ({busy} were busy): {batches:?}"
    );
    let (seqs, next) = distinct.into_iter().next().expect("one batch");
    assert_eq!(seqs, appended.iter().map(|a| a.seq).collect::<Vec<_>>());
    let tenant = node.tenant(ISPB).expect("tenant");
    assert_eq!(tenant.next_hand, 5, "nothing handed out twice");
    assert_eq!(tenant.watermark, 2);

    let done = node.follow(&next, MULTI).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 5);
    node.stop().await;
}

/// A long poll pending on a stream that is DELETEd meanwhile never hands out a
/// message to the closed stream: the messages go to the next stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_a_deleted_stream_hands_out_nothing() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 3_000;
        f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let a1 = node.start_stream(ISPB, MULTI).await;
    let api = node.api.clone();
    let path = a1.next.clone();
    let pending = tokio::spawn(async move { api.get(&path, MULTI).await });
    node.wait_until(timing::STEP, "the pending GET confirmed batch 1", |n| n.watermark(ISPB) == 2).await;
    assert_eq!(node.delete(&a1.next).await.status(), StatusCode::OK);
    assert_eq!(node.open_streams(ISPB), 0);
    let appended = node.append(ISPB, &messages(ISPB, 2)).await;

    let response = tokio::time::timeout(timing::ANSWER, pending).await.expect("answered").expect("task");
    match response.status() {
        StatusCode::GONE => {
            assert_problem(response, 410, "streamClosed").await;
        }
        StatusCode::NO_CONTENT => {
            let pull = pulled(response).await;
            assert_problem(node.get(&pull.next, MULTI).await, 410, "streamClosed").await;
        }
        other => {
            panic!("the closed stream's pending GET answered {other}: {}", response.text().await.unwrap_or_default())
        }
    }
    let tenant = node.tenant(ISPB).expect("tenant");
    assert_eq!(tenant.next_hand, 2, "nothing was handed to the closed stream");
    let next = node.start_stream(ISPB, MULTI).await;
    assert_eq!(next.seqs(), appended.iter().map(|a| a.seq).collect::<Vec<_>>());
    node.stop().await;
}
