//! Durability across restarts (SPEC §2.3, §2.5, §3): a graceful restart keeps open
//! streams, their tokens and their outstanding batches; a `kill -9` of the real binary
//! loses no message that was answered 201.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_streams_tokens_and_outstanding_batches() {
    let mut node = TestNode::start(|f| f.limits.stream_idle_timeout_ms = 30_000).await;
    let bodies = messages(ISPB, 15);
    let appended = node.append(ISPB, &bodies).await;
    let b1 = node.start_stream(ISPB, MULTI).await;
    let b2 = node.follow(&b1.next, MULTI).await;
    assert_eq!(b2.seqs(), (11..=15).collect::<Vec<_>>());
    assert_eq!(node.watermark(ISPB), 11);

    node.restart().await;

    let tenant = node.tenant(ISPB).expect("tenant survives the restart");
    assert_eq!((tenant.watermark, tenant.next_seq, tenant.streams.len()), (11, 16, 1));
    let retried = node.follow(&b1.next, MULTI).await;
    assert_eq!(retried.messages, b2.messages, "the previous token repeats the outstanding batch after a restart");
    assert_eq!(retried.next, b2.next, "and gives the same next token");
    assert_eq!(retried.slots, "1/6");

    let more = messages(ISPB, 3);
    let later = node.append(ISPB, &more).await;
    assert_eq!(later.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![16, 17, 18], "seqs continue after the restart");

    let b3 = node.follow(&b2.next, MULTI).await;
    assert_eq!(b3.seqs(), vec![16, 17, 18], "the current token continues the stream");
    assert_eq!(node.watermark(ISPB), 16);
    let done = node.follow(&b3.next, MULTI).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 19);

    node.restart().await;
    let seqs: Vec<u64> = (1..=18).collect();
    let stored = node.stored(ISPB, &seqs);
    assert_eq!(stored.len(), 18, "every message is still stored");
    let all_bodies: Vec<&String> = bodies.iter().chain(&more).collect();
    let all_ids: Vec<&Appended> = appended.iter().chain(&later).collect();
    for (i, m) in stored.iter().enumerate() {
        assert_eq!(m.body.as_ref(), all_bodies[i].as_bytes(), "seq {}", m.seq);
        assert_eq!(m.resource_id, all_ids[i].resource_id, "seq {}", m.seq);
    }
    assert_eq!(node.watermark(ISPB), 19, "confirmations survive restarts");
    let closed = node.delete(&done.next).await;
    assert_eq!(closed.status(), StatusCode::OK, "the stream is still open after two restarts");
    node.stop().await;
}

/// After a restart, a stream whose client never came back still expires and its
/// batch is redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_stream_expires_after_a_restart() {
    let idle_ms = 1500;
    let idle = Duration::from_millis(idle_ms);
    let mut node = TestNode::start(|f| f.limits.stream_idle_timeout_ms = idle_ms).await;
    node.append(ISPB, &messages(ISPB, 4)).await;
    let abandoned = node.start_stream(ISPB, MULTI).await;
    node.restart().await;
    node.wait_until(idle + Duration::from_secs(5), "the abandoned stream expires", |n| n.open_streams(ISPB) == 0).await;
    let again = node.start_stream(ISPB, MULTI).await;
    assert_eq!(again.messages, abandoned.messages, "redelivered with the same ids and seqs");
    assert_problem(node.get(&abandoned.next, MULTI).await, 410, "streamClosed").await;
    node.stop().await;
}

/// Shutting down answers a waiting long poll at once; its token works after restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_waiting_long_polls() {
    let mut node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 20_000;
        f.limits.stream_idle_timeout_ms = 30_000;
    })
    .await;
    let api = node.api.clone();
    let waiting = tokio::spawn(async move { api.get(&start_path(ISPB), MULTI).await });
    node.wait_until(timing::STEP, "the long poll opened its stream", |n| n.open_streams(ISPB) == 1).await;
    let started = Instant::now();
    node.stop_node().await;
    let response =
        tokio::time::timeout(timing::ANSWER, waiting).await.expect("answered during shutdown").expect("task");
    assert!(started.elapsed() < Duration::from_secs(15), "not held for the whole long-poll wait");
    let pull = pulled(response).await;
    assert_eq!(pull.status, StatusCode::NO_CONTENT);

    node.restart().await;
    let appended = node.append(ISPB, &messages(ISPB, 1)).await;
    let next = node.follow(&pull.next, MULTI).await;
    assert_eq!(next.seqs(), vec![appended[0].seq], "the token answered at shutdown continues after restart");
    node.stop().await;
}

// ---------------------------------------------------------------------------------
// kill -9 of the real binary
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_message() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data_dir = tmp.path().join("data");
    let server = ServeProcess::spawn(&data_dir, 1, &[], "warn").await;

    let bodies = messages(ISPB, 200);
    let mut appended = Vec::new();
    for body in &bodies {
        let (status, outcome) = crate::harness::appended(server.api.post_xml(ISPB, body.clone(), None).await).await;
        assert_eq!(status, StatusCode::CREATED, "each POST is answered 201 once durable");
        appended.extend(outcome);
    }
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    server.kill_9();

    let server = ServeProcess::spawn(&data_dir, 2, &[], "warn").await;
    let api = &server.api;
    let mut received: Vec<Msg> = Vec::new();
    let mut pull = api.start_stream(ISPB, MULTI).await;
    while received.len() < 200 {
        assert_eq!(pull.status, StatusCode::OK, "only {} of 200 messages after the crash", received.len());
        received.extend(pull.messages.iter().cloned());
        if received.len() < 200 {
            pull = api.follow(&pull.next, MULTI).await;
        }
    }
    assert_eq!(received.len(), 200);
    for (i, m) in received.iter().enumerate() {
        assert_eq!(m.seq, appended[i].seq, "in order, gap-free");
        assert_eq!(m.resource_id, appended[i].resource_id, "seq {}: id intact", m.seq);
        assert_eq!(m.body, bodies[i].as_bytes(), "seq {}: body intact", m.seq);
    }
    assert_eq!(api.delete(&pull.next).await.status(), StatusCode::OK);
    let more = api.append(ISPB, &messages(ISPB, 1)).await;
    assert_eq!(more[0].seq, 201, "seqs continue after the crash");
    drop(server);
}
