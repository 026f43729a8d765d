//! Idle expiry (SPEC §2.3): a stream without requests for `stream_idle_timeout` is
//! closed within a second after it; its slot is freed and its batch redelivered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::*;

/// The idle timeout of these tests: short, to watch streams expire.
const IDLE_MS: u64 = 1000;
const IDLE: Duration = Duration::from_millis(IDLE_MS);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_expires_frees_its_slot_and_its_batch_is_redelivered() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = timing::NODE.long_poll_wait_ms;
        f.limits.stream_idle_timeout_ms = IDLE_MS;
    })
    .await;
    let appended = node.append(ISPB, &messages(ISPB, 5)).await;
    let before = Instant::now();
    let abandoned = node.start_stream(ISPB, MULTI).await;
    let last_request_done = Instant::now();
    assert_eq!(abandoned.seqs(), vec![1, 2, 3, 4, 5]);
    assert_eq!(node.open_streams(ISPB), 1);

    node.wait_until(IDLE + Duration::from_secs(5), "the idle stream is closed", |n| n.open_streams(ISPB) == 0).await;
    let closed_after = last_request_done.elapsed();
    assert!(
        closed_after <= IDLE + Duration::from_millis(1500),
        "closed {closed_after:?} after the last request; the spec allows the timeout + 1 s"
    );
    assert!(before.elapsed() >= IDLE, "not closed before the idle timeout ({:?})", before.elapsed());
    let tenant = node.tenant(ISPB).expect("tenant");
    assert_eq!(tenant.watermark, 1, "expiry confirms nothing");
    assert_eq!(tenant.redeliver.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);

    assert_problem(node.get(&abandoned.next, MULTI).await, 410, "streamClosed").await;
    assert_problem(node.delete(&abandoned.next).await, 410, "streamClosed").await;

    let again = node.start_stream(ISPB, MULTI).await;
    assert_eq!(again.slots, "1/6", "the expired stream's slot is free");
    assert_eq!(again.messages, abandoned.messages, "redelivered with the same ids, seqs and bodies");
    assert_eq!(again.ids(), appended.iter().map(|a| a.resource_id.clone()).collect::<Vec<_>>());
    node.stop().await;
}

/// A stream that keeps polling (each long poll shorter than the idle timeout) stays
/// open however long it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_stream_never_expires() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = timing::NODE.long_poll_wait_ms;
        f.limits.stream_idle_timeout_ms = IDLE_MS;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let mut pull = node.start_stream(ISPB, MULTI).await;
    let started = Instant::now();
    while started.elapsed() < IDLE * 3 {
        pull = node.follow(&pull.next, MULTI).await;
        assert_eq!(pull.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(node.open_streams(ISPB), 1);
    assert_eq!(node.watermark(ISPB), 2);
    node.stop().await;
}

/// Holding the outstanding batch through previous-token retries counts as activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_token_retries_keep_a_stream_alive() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = timing::NODE.long_poll_wait_ms;
        f.limits.stream_idle_timeout_ms = IDLE_MS;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 12)).await;
    let b1 = node.start_stream(ISPB, MULTI).await;
    let b2 = node.follow(&b1.next, MULTI).await;
    let started = Instant::now();
    while started.elapsed() < IDLE * 2 {
        let again = node.follow(&b1.next, MULTI).await;
        assert_eq!(again.messages, b2.messages);
        tokio::time::sleep(IDLE / 4).await;
    }
    assert_eq!(node.open_streams(ISPB), 1, "retries are requests on the stream");
    node.stop().await;
}
