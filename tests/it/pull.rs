//! Reading a stream as a PSP does (SPEC §2.2, §2.3): the full tour, single-message
//! and multipart modes, content negotiation, gzip, and the long poll. The core
//! scenarios run twice: over plain HTTP and over HTTPS with a client certificate
//! (`Transport::MutualTls`), as a PSP in production reads.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::*;

/// The whole path of a PSP integration: 25 mixed messages in, one stream following
/// `PI-Pull-Next` until 204, everything out exactly once, in order, byte-identical,
/// and everything confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tour_delivers_everything_once_in_order_and_confirms_it() {
    full_tour_delivers_everything_once_in_order_and_confirms_it_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tour_delivers_everything_once_in_order_and_confirms_it_over_mutual_tls() {
    full_tour_delivers_everything_once_in_order_and_confirms_it_over(Transport::MutualTls).await;
}

async fn full_tour_delivers_everything_once_in_order_and_confirms_it_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let bodies = samples(ISPB, 25);
    let before = wire::clock::format_utc_ms(wire::clock::now_ms());
    let mut appended = node.append(ISPB, &bodies[..20]).await;
    for body in &bodies[20..] {
        appended.extend(node.append(ISPB, std::slice::from_ref(body)).await);
    }
    let after = wire::clock::format_utc_ms(wire::clock::now_ms());
    let seqs: Vec<u64> = appended.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>(), "seqs start at 1, contiguous, in request order");
    for a in &appended {
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &a.resource_id)
            .unwrap_or_else(|_| panic!("generated PI-ResourceId {:?} is not standard Base64", a.resource_id));
        assert_eq!((a.resource_id.len(), raw.len()), (32, 24), "generated id: 24 bytes as 32 Base64 characters");
    }

    let (messages, sizes, last) = node.drain(ISPB, MULTI).await;
    assert_eq!(sizes, vec![10, 10, 5], "batches are cut as large as available, up to 10");
    assert_eq!(messages.len(), 25);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.seq, appended[i].seq, "delivered in seq order");
        assert_eq!(m.resource_id, appended[i].resource_id, "PI-ResourceId is the one the producer was told");
        assert_eq!(m.body, bodies[i].as_bytes(), "body of seq {} is byte-identical", m.seq);
        let expected_type = element_text(&bodies[i], "MsgDefIdr").expect("sample has a MsgDefIdr");
        assert_eq!(m.msg_type, expected_type, "Pix-Message-Type is the AppHdr MsgDefIdr");
        assert!(
            before <= m.enqueued_at && m.enqueued_at <= after,
            "Pix-Enqueued-At {} is the append time",
            m.enqueued_at
        );
    }
    assert_eq!(last.status, StatusCode::NO_CONTENT);
    assert_eq!(last.slots, "1/6", "one stream open");

    let tenant = node.tenant(ISPB).expect("tenant exists");
    assert_eq!(tenant.watermark, 26, "following PI-Pull-Next confirmed every batch");
    assert_eq!(tenant.next_seq, 26);
    assert!(tenant.redeliver.is_empty() && tenant.confirmed_above.is_empty());
    assert_eq!(tenant.streams.len(), 1);

    let closed = node.delete(&last.next).await;
    assert_eq!(closed.status(), StatusCode::OK);
    assert!(closed.headers().get("pi-pull-next").is_none(), "DELETE answers carry no PI-Pull-Next");
    assert_eq!(node.open_streams(ISPB), 0);
    node.stop().await;
}

/// Without `Accept`, with `application/xml` or `*/*`: one bare XML message per
/// response with its headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_message_mode_serves_one_bare_xml_message_per_read() {
    single_message_mode_serves_one_bare_xml_message_per_read_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_message_mode_serves_one_bare_xml_message_per_read_over_mutual_tls() {
    single_message_mode_serves_one_bare_xml_message_per_read_over(Transport::MutualTls).await;
}

async fn single_message_mode_serves_one_bare_xml_message_per_read_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let bodies = messages(ISPB, 3);
    let appended = node.append(ISPB, &bodies).await;

    let first = node.start_stream(ISPB, SINGLE).await;
    let second = node.follow(&first.next, Some("application/xml")).await;
    let third = node.follow(&second.next, Some("*/*")).await;
    for (i, pull) in [&first, &second, &third].into_iter().enumerate() {
        assert_eq!(pull.status, StatusCode::OK);
        assert_eq!(header(&pull.headers, "content-type").as_deref(), Some("application/xml; charset=utf-8"));
        assert_eq!(pull.messages.len(), 1);
        let m = &pull.messages[0];
        assert_eq!(pull.body, bodies[i].as_bytes(), "the body is the XML itself");
        assert_eq!((m.seq, m.resource_id.as_str()), (appended[i].seq, appended[i].resource_id.as_str()));
        assert_eq!(m.msg_type, "pacs.008.spi.1.14");
        assert_eq!(header(&pull.headers, "content-encoding"), None, "identity without Accept-Encoding");
    }
    let done = node.follow(&third.next, SINGLE).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(node.watermark(ISPB), 4);
    node.stop().await;
}

/// An `Accept` the server cannot serve is 406 and opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_accept_is_406_and_takes_no_slot() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 2)).await;
    for accept in ["application/json", "text/html", "multipart/related"] {
        let response = node.get(&start_path(ISPB), Some(accept)).await;
        assert_problem(response, 406, "notAcceptable").await;
    }
    assert_eq!(node.open_streams(ISPB), 0, "a refused start opens no stream");
    assert_eq!(node.tenant(ISPB).expect("tenant").next_hand, 1, "nothing was handed out");

    let pull = node.start_stream(ISPB, MULTI).await;
    assert_eq!(pull.seqs(), vec![1, 2]);
    let refused = node.get(&pull.next, Some("application/json")).await;
    assert_problem(refused, 406, "notAcceptable").await;
    assert_eq!(node.watermark(ISPB), 1, "a refused read confirms nothing");
    node.stop().await;
}

/// `Accept-Encoding: gzip` compresses the whole body (multipart or single), and the
/// decompressed body is exactly what identity would carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_compresses_the_whole_body_when_asked() {
    gzip_compresses_the_whole_body_when_asked_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_compresses_the_whole_body_when_asked_over_mutual_tls() {
    gzip_compresses_the_whole_body_when_asked_over(Transport::MutualTls).await;
}

async fn gzip_compresses_the_whole_body_when_asked_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let bodies = messages(ISPB, 13);
    let appended = node.append(ISPB, &bodies).await;

    let gz = [("accept", "multipart/mixed"), ("accept-encoding", "gzip")];
    let first = pulled(node.request(reqwest::Method::GET, &start_path(ISPB), &gz).await).await;
    assert!(first.gzip, "Content-Encoding: gzip");
    assert_eq!(&first.wire[..2], &[0x1f, 0x8b], "the whole body is one gzip stream");
    assert!(first.wire.len() < first.body.len(), "compressed");
    assert_eq!(first.messages.len(), 10);
    for (i, m) in first.messages.iter().enumerate() {
        assert_eq!(m.body, bodies[i].as_bytes());
        assert_eq!(m.resource_id, appended[i].resource_id);
    }

    // Single-message mode compresses the bare XML the same way.
    let single_gz = [("accept", "application/xml"), ("accept-encoding", "gzip")];
    let second = pulled(node.request(reqwest::Method::GET, &first.next, &single_gz).await).await;
    assert!(second.gzip);
    assert_eq!(second.body, bodies[10].as_bytes(), "single message gzip-compressed as a whole");
    assert_eq!(second.messages[0].seq, 11);

    let third = node.follow(&second.next, MULTI).await;
    assert!(!third.gzip, "identity when not asked");
    assert_eq!(header(&third.headers, "content-encoding"), None);
    assert_eq!(third.seqs(), vec![12, 13]);
    let refused_gzip = [("accept", "multipart/mixed"), ("accept-encoding", "gzip;q=0, identity")];
    let retry = pulled(node.request(reqwest::Method::GET, &second.next, &refused_gzip).await).await;
    assert!(!retry.gzip, "gzip;q=0 refuses gzip");
    assert_eq!(retry.seqs(), vec![12, 13]);
    node.stop().await;
}

/// A multipart batch is RFC 2046 as an independent MIME parser reads it, even when
/// messages contain text that looks like MIME delimiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_batches_are_rfc2046_with_per_part_headers() {
    multipart_batches_are_rfc2046_with_per_part_headers_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_batches_are_rfc2046_with_per_part_headers_over_mutual_tls() {
    multipart_batches_are_rfc2046_with_per_part_headers_over(Transport::MutualTls).await;
}

async fn multipart_batches_are_rfc2046_with_per_part_headers_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let tricky = [
        "<Ustrd>\r\n--\r\n--boundary\r\n--=_Part_0\r\nContent-Type: text/plain\r\n\r\n</Ustrd>",
        "<Ustrd>--pixstream\n--\n</Ustrd>",
        "<Ustrd>ends with CRLF\r\n</Ustrd>",
    ];
    let mut bodies: Vec<String> = (0..7).map(|_| message(ISPB)).collect();
    for t in tricky {
        bodies.push(envelope(ISPB, &unique_biz(), "pacs.002.spi.1.15", t));
    }
    bodies.push(message(ISPB));
    let appended = node.append(ISPB, &bodies).await;

    let response = node.get(&start_path(ISPB), MULTI).await;
    let content_type = header(response.headers(), "content-type").expect("content type");
    let pull = pulled(response).await;
    let boundary = boundary_of(&content_type);
    assert_eq!(pull.messages.len(), 10, "up to 10 per batch");
    for (i, m) in pull.messages.iter().enumerate() {
        assert_eq!(m.body, bodies[i].as_bytes(), "part {} byte-identical", i + 1);
        assert_eq!(m.seq, appended[i].seq);
        assert_eq!(m.resource_id, appended[i].resource_id);
        assert!(find(&m.body, boundary.as_bytes()).is_none(), "the boundary never occurs inside a part");
    }
    assert_eq!(pull.messages[8].msg_type, "pacs.002.spi.1.15");
    let delimiters = pull.body.windows(boundary.len() + 2).filter(|w| *w == format!("--{boundary}").as_bytes()).count();
    assert_eq!(delimiters, 11, "10 delimiters and the closing one");

    let rest = node.follow(&pull.next, MULTI).await;
    assert_eq!(rest.seqs(), vec![11], "the server never waits to fill a batch");
    node.stop().await;
}

/// A pull waiting on an empty queue is answered as soon as a message is appended,
/// well before the long-poll wait ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_an_append() {
    long_poll_is_woken_by_an_append_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_an_append_over_mutual_tls() {
    long_poll_is_woken_by_an_append_over(Transport::MutualTls).await;
}

async fn long_poll_is_woken_by_an_append_over(transport: Transport) {
    let node = TestNode::start_over(transport, |f| {
        f.limits.long_poll_wait_ms = 6_000;
        f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS;
    })
    .await;
    let api = node.api.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { api.start_stream(ISPB, MULTI).await });
    node.wait_until(timing::STEP, "the start request opened its stream", |n| n.open_streams(ISPB) == 1).await;
    let body = message(ISPB);
    let appended = node.append(ISPB, std::slice::from_ref(&body)).await;
    let first = tokio::time::timeout(timing::ANSWER, waiting).await.expect("answered").expect("task");
    let waited = started.elapsed();
    assert_eq!(first.status, StatusCode::OK, "woken with the new message");
    assert_eq!(first.seqs(), vec![appended[0].seq]);
    assert_eq!(first.messages[0].body, body.as_bytes());
    assert!(waited < Duration::from_secs(5), "answered {waited:?} after the start: woken, not timed out");

    // The same on a continuing stream: GET with the token waits, POST wakes it.
    let api = node.api.clone();
    let next = first.next.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { api.follow(&next, MULTI).await });
    node.wait_until(timing::STEP, "the first batch was confirmed", |n| n.watermark(ISPB) == 2).await;
    let appended = node.append(ISPB, &messages(ISPB, 1)).await;
    let second = tokio::time::timeout(timing::ANSWER, waiting).await.expect("answered").expect("task");
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.seqs(), vec![appended[0].seq]);
    assert!(started.elapsed() < Duration::from_secs(5), "woken, not timed out");
    node.stop().await;
}

/// Six long polls wait on one ISPB; each single-message append is handed promptly to
/// exactly one of them while the others keep waiting (only the streams needed for
/// the new messages read; none is answered empty, none is left behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_appends_to_six_waiting_streams_each_wake_exactly_one() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 8_000;
        f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS;
    })
    .await;
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let api = node.api.clone();
        waiting.spawn(async move { api.start_stream(ISPB, MULTI).await });
    }
    node.wait_until(timing::STEP, "six streams opened and waiting", |n| n.open_streams(ISPB) == 6).await;
    let started = Instant::now();
    let mut delivered = Vec::new();
    for round in 1..=6 {
        let appended = node.append(ISPB, &messages(ISPB, 1)).await;
        let answered = tokio::time::timeout(Duration::from_secs(4), waiting.join_next())
            .await
            .unwrap_or_else(|_| panic!("append {round} woke no waiting stream"))
            .expect("a stream is still waiting")
            .expect("task");
        assert_eq!(answered.status, StatusCode::OK, "append {round} is answered with the message, not a 204");
        assert_eq!(answered.seqs(), vec![appended[0].seq], "exactly the new message, to exactly one stream");
        assert_eq!(waiting.len(), 6 - round, "the other streams keep waiting");
        delivered.push(appended[0].seq);
    }
    assert_eq!(delivered, (1..=6).collect::<Vec<_>>());
    assert!(started.elapsed() < Duration::from_secs(8), "every message was handed out before any long poll expired");
    node.stop().await;
}

/// With nothing to deliver the pull waits `long_poll_wait` (at least 90 % of it: the
/// end is spread), then answers 204 with a `PI-Pull-Next` and the slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_queue_answers_204_after_the_long_poll_wait() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 400).await;
    let started = Instant::now();
    let first = node.start_stream(ISPB, MULTI).await;
    let waited = started.elapsed();
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert!(waited >= Duration::from_millis(350), "a 204 only after the long-poll wait ({waited:?})");
    assert_eq!(first.slots, "1/6");
    assert!(first.wire.is_empty());

    let started = Instant::now();
    let second = node.follow(&first.next, SINGLE).await;
    assert_eq!(second.status, StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(350));
    // The stream is still usable afterwards.
    let appended = node.append(ISPB, &messages(ISPB, 1)).await;
    let third = node.follow(&second.next, SINGLE).await;
    assert_eq!(third.seqs(), vec![appended[0].seq]);
    node.stop().await;
}

/// A pull waiting on an empty queue is also woken when another stream's batch comes
/// back for redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_a_redelivery() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 6_000;
        f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 10)).await;
    let a1 = node.start_stream(ISPB, MULTI).await;
    node.append(ISPB, &messages(ISPB, 5)).await;
    let a2 = node.follow(&a1.next, MULTI).await;
    assert_eq!(a2.seqs(), vec![11, 12, 13, 14, 15]);

    let api = node.api.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { api.start_stream(ISPB, MULTI).await });
    node.wait_until(timing::STEP, "the second stream is waiting", |n| n.open_streams(ISPB) == 2).await;
    assert_eq!(node.delete(&a1.next).await.status(), StatusCode::OK, "DELETE with the previous token");
    let b = tokio::time::timeout(timing::ANSWER, waiting).await.expect("answered").expect("task");
    assert_eq!(b.messages, a2.messages, "the waiting stream receives the returned batch");
    assert!(started.elapsed() < Duration::from_secs(5), "woken by the redelivery, not by the timeout");
    node.stop().await;
}

/// Each ISPB has its own log: seqs start at 1 per ISPB and nothing crosses over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ispb_reads_only_its_own_log() {
    each_ispb_reads_only_its_own_log_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ispb_reads_only_its_own_log_over_mutual_tls() {
    each_ispb_reads_only_its_own_log_over(Transport::MutualTls).await;
}

async fn each_ispb_reads_only_its_own_log_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let mine = messages(ISPB, 7);
    let theirs = messages(OTHER_ISPB, 4);
    let mut my_ids = node.append(ISPB, &mine[..3]).await;
    let mut their_ids = node.append(OTHER_ISPB, &theirs[..2]).await;
    my_ids.extend(node.append(ISPB, &mine[3..]).await);
    their_ids.extend(node.append(OTHER_ISPB, &theirs[2..]).await);
    assert_eq!(their_ids.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(my_ids.iter().map(|a| a.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());

    for (ispb, bodies, ids) in [(ISPB, &mine, &my_ids), (OTHER_ISPB, &theirs, &their_ids)] {
        let (got, _, last) = node.drain(ispb, MULTI).await;
        assert!(last.next.starts_with(&wire::paths::pull_next_path(ispb, "")));
        assert_eq!(got.len(), bodies.len(), "{ispb}");
        for (i, m) in got.iter().enumerate() {
            assert_eq!(m.body, bodies[i].as_bytes(), "{ispb} seq {}", m.seq);
            assert_eq!(m.resource_id, ids[i].resource_id);
        }
    }
    node.stop().await;
}

/// HTTP/2 (prior knowledge, plain text) is accepted as well as HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_accepted() {
    let node = TestNode::start(|_| {}).await;
    let bodies = messages(ISPB, 2);
    node.append(ISPB, &bodies).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_gzip()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let api = Api { client: h2, ..node.api.clone() };
    let response = api.get(&start_path(ISPB), MULTI).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let pull = pulled(response).await;
    assert_eq!(pull.seqs(), vec![1, 2]);
    assert_eq!(pull.messages[1].body, bodies[1].as_bytes());
    node.stop().await;
}

/// Whatever bytes a valid message has — BOM, CRLF line ends, non-ASCII UTF-8,
/// namespace prefixes, trailing newline — the PSP receives exactly those bytes, in
/// single and multipart mode, compressed or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_served_byte_for_byte() {
    bodies_are_served_byte_for_byte_over(Transport::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_served_byte_for_byte_over_mutual_tls() {
    bodies_are_served_byte_for_byte_over(Transport::MutualTls).await;
}

async fn bodies_are_served_byte_for_byte_over(transport: Transport) {
    let node = TestNode::start_over(transport, |_| {}).await;
    let odd = [
        format!("\u{feff}{}", message(ISPB)),
        message(ISPB).replace('\n', "\r\n") + "\r\n",
        envelope(ISPB, &unique_biz(), "pacs.008.spi.1.14", "<Nm>São Paulo — Ações &amp; Cia &lt;Ltda&gt;</Nm>"),
        format!(
            "<h:Envelope xmlns:h=\"urn:x\"><h:AppHdr><h:To><h:Id>{ISPB}</h:Id></h:To><h:BizMsgIdr>{}</h:BizMsgIdr>\
             <h:MsgDefIdr>camt.060.spi.1.3</h:MsgDefIdr></h:AppHdr><h:Document>\t</h:Document></h:Envelope>\n\n",
            unique_biz()
        ),
    ];
    // Each odd body twice (fresh BizMsgIdr the second time): read in single mode, then
    // in a gzip multipart batch.
    let mut appended = Vec::new();
    for body in &odd {
        appended.extend(node.append(ISPB, std::slice::from_ref(body)).await);
    }
    let again: Vec<String> =
        odd.iter().map(|b| b.replace(&element_text(b, "BizMsgIdr").expect("biz"), &unique_biz())).collect();
    appended.extend(node.append(ISPB, &again).await);

    let mut pull = node.start_stream(ISPB, SINGLE).await;
    for (i, body) in odd.iter().enumerate() {
        assert_eq!(pull.body, body.as_bytes(), "single mode, message {}", i + 1);
        assert_eq!(pull.messages[0].resource_id, appended[i].resource_id);
        pull = node.follow(&pull.next, SINGLE).await;
    }
    assert_eq!(pull.messages[0].body, again[0].as_bytes());
    let gz = [("accept", "multipart/mixed"), ("accept-encoding", "gzip")];
    let batch = pulled(node.request(reqwest::Method::GET, &pull.next, &gz).await).await;
    assert!(batch.gzip);
    assert_eq!(batch.messages.len(), 3);
    for (m, body) in batch.messages.iter().zip(&again[1..]) {
        assert_eq!(m.body, body.as_bytes(), "multipart + gzip, seq {}", m.seq);
    }
    assert_eq!(pull.messages[0].msg_type, "pacs.008.spi.1.14");
    assert_eq!(batch.messages[2].msg_type, "camt.060.spi.1.3");
    node.stop().await;
}
