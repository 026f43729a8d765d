//! Cursor semantics a PSP relies on after lost responses and on shutdown (SPEC §2.3):
//! the previous-token retry, stale tokens, and DELETE with the current or previous
//! token.

use reqwest::{Method, StatusCode};

use crate::harness::*;

/// Repeating the previous `PI-Pull-Next` returns the same batch and the same next
/// token and confirms nothing; anything older is 410 staleCursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_token_retry_repeats_the_batch_and_older_tokens_are_stale() {
    let node = TestNode::start(|_| {}).await;
    let bodies = messages(ISPB, 25);
    node.append(ISPB, &bodies).await;

    let b1 = node.start_stream(ISPB, MULTI).await;
    assert_eq!(b1.seqs(), (1..=10).collect::<Vec<_>>());
    let b2 = node.follow(&b1.next, MULTI).await;
    assert_eq!(b2.seqs(), (11..=20).collect::<Vec<_>>());
    assert_eq!(node.watermark(ISPB), 11, "following T1 confirmed batch 1");

    for attempt in 1..=2 {
        let again = node.follow(&b1.next, MULTI).await;
        assert_eq!(again.status, StatusCode::OK, "retry {attempt}");
        assert_eq!(again.messages, b2.messages, "retry {attempt}: same messages, ids, seqs, bodies");
        assert_eq!(again.next, b2.next, "retry {attempt}: same next token");
        assert_eq!(node.watermark(ISPB), 11, "retry {attempt} confirmed nothing");
        assert_eq!(node.tenant(ISPB).expect("tenant").next_hand, 21, "retry {attempt} handed out nothing new");
    }

    let b3 = node.follow(&b2.next, MULTI).await;
    assert_eq!(b3.seqs(), (21..=25).collect::<Vec<_>>());
    assert_eq!(node.watermark(ISPB), 21);

    let stale = node.get(&b1.next, MULTI).await;
    assert_problem(stale, 410, "staleCursor").await;
    assert_eq!(node.watermark(ISPB), 21, "a stale token confirms nothing");

    let again = node.follow(&b2.next, MULTI).await;
    assert_eq!(again.messages, b3.messages, "the new previous token repeats batch 3");
    assert_eq!(again.next, b3.next);

    let done = node.follow(&b3.next, MULTI).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 26);
    for (i, m) in b1.messages.iter().chain(&b2.messages).chain(&b3.messages).enumerate() {
        assert_eq!(m.body, bodies[i].as_bytes());
    }
    node.stop().await;
}

/// The previous-token retry in single-message mode, after a lost response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_token_retry_in_single_mode() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 3)).await;
    let first = node.start_stream(ISPB, SINGLE).await;
    let second = node.follow(&first.next, SINGLE).await; // pretend this answer was lost
    let retried = node.follow(&first.next, SINGLE).await;
    assert_eq!(retried.messages, second.messages);
    assert_eq!(retried.next, second.next);
    let third = node.follow(&retried.next, SINGLE).await;
    assert_eq!(third.seqs(), vec![3], "no gap, no duplicate after the retry");
    node.stop().await;
}

/// DELETE with the current token confirms the outstanding batch and closes the
/// stream; its tokens then answer 410 streamClosed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_current_token_confirms_and_closes() {
    let node = TestNode::start(|_| {}).await;
    let appended = node.append(ISPB, &messages(ISPB, 15)).await;
    let b1 = node.start_stream(ISPB, MULTI).await;
    assert_eq!(b1.seqs(), (1..=10).collect::<Vec<_>>());
    assert_eq!(node.open_streams(ISPB), 1);

    let deleted = node.delete(&b1.next).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(deleted.headers().get("pi-pull-next").is_none(), "DELETE answers carry no PI-Pull-Next");
    assert!(deleted.bytes().await.expect("body").is_empty(), "DELETE answers have an empty body");
    assert_eq!(node.watermark(ISPB), 11, "the current token's DELETE confirmed batch 1");
    assert_eq!(node.open_streams(ISPB), 0, "slot freed");

    assert_problem(node.get(&b1.next, MULTI).await, 410, "streamClosed").await;
    assert_problem(node.delete(&b1.next).await, 410, "streamClosed").await;

    let next = node.start_stream(ISPB, MULTI).await;
    assert_eq!(next.seqs(), (11..=15).collect::<Vec<_>>(), "a new stream continues after the confirmed batch");
    assert_eq!(next.ids(), appended[10..].iter().map(|a| a.resource_id.clone()).collect::<Vec<_>>());
    assert_eq!(next.slots, "1/6");
    node.stop().await;
}

/// DELETE with the previous token closes without confirming: the outstanding batch is
/// delivered again, same ids and seqs, to the next stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_previous_token_returns_the_batch_for_redelivery() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 25)).await;
    let b1 = node.start_stream(ISPB, MULTI).await;
    let b2 = node.follow(&b1.next, MULTI).await;
    assert_eq!(b2.seqs(), (11..=20).collect::<Vec<_>>());

    let deleted = node.request(Method::DELETE, &b1.next, &[]).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(deleted.headers().get("pi-pull-next").is_none(), "DELETE answers carry no PI-Pull-Next");
    assert_eq!(node.watermark(ISPB), 11, "batch 2 was not confirmed");
    assert_eq!(node.open_streams(ISPB), 0);

    assert_problem(node.get(&b2.next, MULTI).await, 410, "streamClosed").await;
    assert_problem(node.delete(&b2.next).await, 410, "streamClosed").await;
    assert_problem(node.get(&b1.next, MULTI).await, 410, "streamClosed").await;

    let again = node.start_stream(ISPB, MULTI).await;
    assert_eq!(again.messages, b2.messages, "batch 2 redelivered with the same ids, seqs and bodies");
    let rest = node.follow(&again.next, MULTI).await;
    assert_eq!(rest.seqs(), (21..=25).collect::<Vec<_>>(), "then the log continues");
    let done = node.follow(&rest.next, MULTI).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 26);
    node.stop().await;
}

/// DELETE of a stream that found nothing (current token after a 204) just closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_an_idle_empty_stream_frees_its_slot() {
    let node = TestNode::start(|_| {}).await;
    let empty = node.start_stream(ISPB, MULTI).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);
    assert_eq!(node.open_streams(ISPB), 1);
    let deleted = node.delete(&empty.next).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(node.open_streams(ISPB), 0);
    assert_problem(node.delete(&empty.next).await, 410, "streamClosed").await;
    node.stop().await;
}

/// Issue 10: a DELETE's 200 carries `Pix-Stream-Slots` like every 200 and 204 (SPEC
/// §2.2), counting the streams left open — with the current and with the previous
/// token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_delete_answers_carry_the_stream_slots_left() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 25)).await;
    let a1 = node.start_stream(ISPB, MULTI).await;
    let a2 = node.follow(&a1.next, MULTI).await;
    assert_eq!(a2.seqs(), (11..=20).collect::<Vec<_>>());
    let b = node.start_stream(ISPB, MULTI).await;
    assert_eq!(b.seqs(), (21..=25).collect::<Vec<_>>());
    let c = node.start_stream(ISPB, MULTI).await;
    assert_eq!((c.status, c.slots.as_str()), (StatusCode::NO_CONTENT, "3/6"));

    let current = node.delete(&b.next).await;
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(header(current.headers(), "pix-stream-slots").as_deref(), Some("2/6"), "after closing b");
    assert!(current.headers().get("pi-pull-next").is_none());

    let previous = node.delete(&a1.next).await;
    assert_eq!(previous.status(), StatusCode::OK);
    assert_eq!(header(previous.headers(), "pix-stream-slots").as_deref(), Some("1/6"), "after closing a");
    assert_eq!(node.open_streams(ISPB), 1);
    node.stop().await;
}

/// Returned batches go out again before newer messages, lowest seq first, whatever
/// order they came back in; the watermark never passes an unconfirmed message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_go_out_first_lowest_seq_first() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 40)).await;
    let a1 = node.start_stream(ISPB, MULTI).await;
    let b1 = node.start_stream(ISPB, MULTI).await;
    assert_eq!((a1.seqs()[0], b1.seqs()[0]), (1, 11));
    let a2 = node.follow(&a1.next, MULTI).await;
    assert_eq!(a2.seqs(), (21..=30).collect::<Vec<_>>());
    assert_eq!(node.watermark(ISPB), 1 + 10, "1-10 confirmed; 11-20 still held by B");
    let b2 = node.follow(&b1.next, MULTI).await;
    assert_eq!(b2.seqs(), (31..=40).collect::<Vec<_>>());
    assert_eq!(node.watermark(ISPB), 21, "the watermark stops below A's outstanding 21-30");
    node.append(ISPB, &messages(ISPB, 5)).await;

    // B's batch comes back first, then A's.
    assert_eq!(node.delete(&b1.next).await.status(), StatusCode::OK);
    assert_eq!(node.delete(&a1.next).await.status(), StatusCode::OK);
    assert_eq!(
        node.tenant(ISPB).expect("tenant").redeliver.into_iter().collect::<Vec<_>>(),
        (21..=40).collect::<Vec<_>>()
    );
    assert_eq!(node.watermark(ISPB), 21);

    let c1 = node.start_stream(ISPB, MULTI).await;
    assert_eq!(c1.messages, a2.messages, "lowest returned seqs first, same ids");
    let c2 = node.follow(&c1.next, MULTI).await;
    assert_eq!(c2.messages, b2.messages);
    let c3 = node.follow(&c2.next, MULTI).await;
    assert_eq!(c3.seqs(), (41..=45).collect::<Vec<_>>(), "newer messages only after the redeliveries");
    let done = node.follow(&c3.next, MULTI).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 46);
    node.stop().await;
}
