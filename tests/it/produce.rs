//! The producer API (SPEC §3): validation, all-or-nothing batches, media types, size
//! limits, idempotency and back-pressure — and in every refusal, nothing stored.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::*;

const HDR_FR: &str = "<Fr><FIId><FinInstnId><Othr><Id>00038166</Id></Othr></FinInstnId></FIId></Fr>";

fn to(ispb: &str) -> String {
    format!("<To><FIId><FinInstnId><Othr><Id>{ispb}</Id></Othr></FinInstnId></FIId></To>")
}

/// Bodies that break one rule each, with a word the reason should contain.
fn invalid_messages() -> Vec<(&'static str, String)> {
    let good = message(ISPB);
    let doc = "<Document><X/></Document>";
    let hdr =
        format!("{HDR_FR}{}<BizMsgIdr>{}</BizMsgIdr><MsgDefIdr>pacs.008.spi.1.14</MsgDefIdr>", to(ISPB), unique_biz());
    vec![
        ("malformed (truncated)", good[..good.len() - 20].to_owned()),
        ("malformed (mismatched tag)", good.replace("</AppHdr>", "</AppHdrX>")),
        ("not XML at all", "this is not xml".to_owned()),
        ("empty body", String::new()),
        ("wrong root", format!("<Root><AppHdr>{hdr}</AppHdr>{doc}</Root>")),
        ("no AppHdr", format!("<Envelope>{doc}</Envelope>")),
        ("no Document", format!("<Envelope><AppHdr>{hdr}</AppHdr></Envelope>")),
        ("no MsgDefIdr", format!("<Envelope><AppHdr>{HDR_FR}{}</AppHdr>{doc}</Envelope>", to(ISPB))),
        (
            "no To",
            format!("<Envelope><AppHdr>{HDR_FR}<MsgDefIdr>pacs.008.spi.1.14</MsgDefIdr></AppHdr>{doc}</Envelope>"),
        ),
        ("To Id is another ISPB", envelope(OTHER_ISPB, &unique_biz(), "pacs.008.spi.1.14", "<X/>")),
        ("DOCTYPE", format!("<!DOCTYPE Envelope>{}", message(ISPB).split_once('\n').expect("declaration line").1)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_message_is_422_naming_part_1_and_nothing_is_stored() {
    let node = TestNode::start(|_| {}).await;
    for (what, body) in invalid_messages() {
        let response = node.post_xml(ISPB, body, None).await;
        let problem = assert_problem(response, 422, "invalidMessage").await;
        assert!(problem.detail.contains("part 1"), "{what}: detail names part 1: {}", problem.detail);
    }
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");
    node.stop().await;
}

/// A batch is all-or-nothing: one bad part rejects the request, naming that part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_part_rejects_the_whole_batch_naming_it() {
    let node = TestNode::start(|_| {}).await;
    for (what, bad) in invalid_messages().into_iter().filter(|(_, b)| !b.is_empty()) {
        let parts = [OutPart::xml(message(ISPB)), OutPart::xml(bad), OutPart::xml(message(ISPB))];
        let problem = assert_problem(node.post_multipart(ISPB, &parts).await, 422, "invalidMessage").await;
        assert!(problem.detail.contains("part 2"), "{what}: detail names part 2: {}", problem.detail);
        assert!(node.tenant(ISPB).is_none_or(|t| t.next_seq == 1), "{what}: nothing stored");
    }
    // Also when the bad part comes last in a larger batch.
    let mut parts: Vec<OutPart> = (0..9).map(|_| OutPart::xml(message(ISPB))).collect();
    parts.push(OutPart::xml(envelope(OTHER_ISPB, &unique_biz(), "pacs.008.spi.1.14", "<X/>")));
    let problem = assert_problem(node.post_multipart(ISPB, &parts).await, 422, "invalidMessage").await;
    assert!(problem.detail.contains("part 10"), "{}", problem.detail);
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");
    // And the same good parts are then accepted (they were not half-remembered).
    let good: Vec<OutPart> = parts[..9].to_vec();
    let (status, appended) = appended(node.post_multipart(ISPB, &good).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(appended.iter().all(|a| !a.duplicate));
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_multipart_framing_is_400_invalid_body() {
    let node = TestNode::start(|_| {}).await;
    let (content_type, good_body) = multipart_body(&[OutPart::xml(message(ISPB)), OutPart::xml(message(ISPB))]);
    let boundary = boundary_of(&content_type);
    let no_close = good_body[..good_body.len() - (boundary.len() + 6)].to_vec();
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("no delimiter at all", content_type.clone(), message(ISPB).into_bytes()),
        ("another boundary", "multipart/mixed; boundary=\"not-the-one\"".into(), good_body.clone()),
        ("no boundary parameter", "multipart/mixed".into(), good_body.clone()),
        ("no closing delimiter", content_type.clone(), no_close),
        ("empty body", content_type.clone(), Vec::new()),
    ];
    for (what, ct, body) in cases {
        let response = node.post_raw(ISPB, &ct, body).await;
        let status = response.status();
        if status == StatusCode::BAD_REQUEST {
            assert_problem(response, 400, "invalidBody").await;
        } else {
            panic!("{what}: expected 400 invalidBody, got {status}: {}", response.text().await.unwrap_or_default());
        }
    }
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let node = TestNode::start(|_| {}).await;
    for ct in ["text/plain", "application/json", "application/octet-stream"] {
        let response = node.post_raw(ISPB, ct, message(ISPB)).await;
        assert_problem(response, 415, "unsupportedMediaType").await;
    }
    let no_type = node
        .client
        .post(format!("{}{}", node.internal, wire::paths::append_path(ISPB)))
        .body(message(ISPB))
        .send()
        .await
        .expect("answered");
    assert_problem(no_type, 415, "unsupportedMediaType").await;
    // A multipart part of a foreign type is refused too.
    let mut part = OutPart::xml(message(ISPB));
    part.content_type = Some("text/plain".into());
    let response = node.post_multipart(ISPB, &[OutPart::xml(message(ISPB)), part]).await;
    assert!(response.status().is_client_error(), "a text/plain part is refused: {}", response.status());
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_message_bytes_is_413_and_nothing_is_stored() {
    let node = TestNode::start(|_| {}).await;
    let limit = node.config.max_message_bytes;
    assert_eq!(limit, 1 << 20, "the documented default of 1 MiB");
    let padding = |n: usize| format!("<Ustrd>{}</Ustrd>", "x".repeat(n));
    let base = envelope(ISPB, &unique_biz(), "pacs.008.spi.1.14", "").len();
    let over = envelope(ISPB, &unique_biz(), "pacs.008.spi.1.14", &padding(limit + 1 - base));
    assert!(over.len() > limit);
    assert_problem(node.post_xml(ISPB, over.clone(), None).await, 413, "payloadTooLarge").await;
    let parts = [OutPart::xml(message(ISPB)), OutPart::xml(over)];
    assert_problem(node.post_multipart(ISPB, &parts).await, 413, "payloadTooLarge").await;
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");

    // Exactly at the limit is fine.
    let biz = unique_biz();
    let at = envelope(ISPB, &biz, "pacs.008.spi.1.14", &padding(0));
    let at = envelope(ISPB, &biz, "pacs.008.spi.1.14", &padding(limit - at.len()));
    assert_eq!(at.len(), limit);
    let (status, appended) = appended(node.post_xml(ISPB, at.clone(), None).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(node.stored(ISPB, &[appended[0].seq])[0].body.as_ref(), at.as_bytes());
    node.stop().await;
}

/// More than 100 messages in one request is refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_parts_are_refused() {
    let node = TestNode::start(|_| {}).await;
    let parts: Vec<OutPart> = (0..101).map(|_| OutPart::xml(message(ISPB))).collect();
    let response = node.post_multipart(ISPB, &parts).await;
    let status = response.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE, "101 parts: {status}");
    assert_eq!(node.next_seq(ISPB), 1, "nothing stored");
    let (status, appended) = appended(node.post_multipart(ISPB, &parts[..100]).await).await;
    assert_eq!((status, appended.len()), (StatusCode::CREATED, 100));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_by_resource_id_or_biz_msg_idr_are_reported_not_stored() {
    let node = TestNode::start(|_| {}).await;

    // By supplied PI-ResourceId, even with a different body.
    let (status, first) = appended(node.post_xml(ISPB, message(ISPB), Some("producer-id-0001")).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first, vec![Appended { seq: 1, resource_id: "producer-id-0001".into(), duplicate: false }]);
    let (status, again) = appended(node.post_xml(ISPB, message(ISPB), Some("producer-id-0001")).await).await;
    assert_eq!(status, StatusCode::OK, "all duplicates: 200");
    assert_eq!(again, vec![Appended { seq: 1, resource_id: "producer-id-0001".into(), duplicate: true }]);
    assert_eq!(node.next_seq(ISPB), 2, "not stored twice");

    // By AppHdr BizMsgIdr when no id is supplied.
    let body = envelope(ISPB, "M0003816620261127dedupe0000000001", "pacs.002.spi.1.15", "<X/>");
    let (status, first) = appended(node.post_xml(ISPB, body.clone(), None).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first[0].seq, 2);
    let (status, again) = appended(node.post_xml(ISPB, body.clone(), None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, vec![Appended { seq: 2, resource_id: first[0].resource_id.clone(), duplicate: true }]);
    assert_eq!(node.next_seq(ISPB), 3);

    // In a batch: outcomes in request order, 201 because one is new; a repeat inside
    // the same request is a duplicate too.
    let fresh = message(ISPB);
    let parts = [
        OutPart::xml(body.clone()),
        OutPart::xml(fresh.clone()),
        OutPart::xml(message(ISPB)).with_id("producer-id-0001"),
        OutPart::xml(fresh),
    ];
    let (status, outcomes) = appended(node.post_multipart(ISPB, &parts).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let summary: Vec<(u64, bool)> = outcomes.iter().map(|a| (a.seq, a.duplicate)).collect();
    assert_eq!(summary, vec![(2, true), (3, false), (1, true), (3, true)]);
    assert_eq!(outcomes[3].resource_id, outcomes[1].resource_id);
    assert_eq!(node.next_seq(ISPB), 4, "only one new message stored");

    // The PSP sees each message once.
    let (delivered, _, _) = node.drain(ISPB, MULTI).await;
    assert_eq!(delivered.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(delivered[0].resource_id, "producer-id-0001", "a supplied PI-ResourceId is served as is");
    node.stop().await;
}

/// Over `max_backlog` unconfirmed messages the producer gets 503 + Retry-After and
/// nothing of that request is stored; confirming makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_over_the_limit_is_503_with_retry_after_and_stores_nothing() {
    let node = TestNode::start(|f| {
        f.tenants.max_backlog = 5;
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let first = messages(ISPB, 3);
    node.append(ISPB, &first).await;
    let response =
        node.post_multipart(ISPB, &messages(ISPB, 3).into_iter().map(OutPart::xml).collect::<Vec<_>>()).await;
    let problem = assert_problem(response, 503, "unavailable").await;
    assert!(retry_after(&problem.headers) >= 1, "Retry-After is a positive integer");
    assert_eq!(node.next_seq(ISPB), 4, "nothing of the refused batch was stored");

    node.append(ISPB, &messages(ISPB, 2)).await;
    assert_eq!(node.next_seq(ISPB), 6, "up to the limit is accepted");
    let problem = assert_problem(node.post_xml(ISPB, message(ISPB), None).await, 503, "unavailable").await;
    assert!(retry_after(&problem.headers) >= 1);
    assert_eq!(node.next_seq(ISPB), 6);

    // A retried duplicate adds no backlog: it is still answered with its seq.
    let (status, again) = appended(node.post_xml(ISPB, first[0].clone(), None).await).await;
    assert_eq!(status, StatusCode::OK, "a duplicate at the limit is not refused");
    assert_eq!((again[0].seq, again[0].duplicate), (1, true));

    let (delivered, _, _) = node.drain(ISPB, MULTI).await;
    assert_eq!(delivered.len(), 5);
    assert_eq!(node.watermark(ISPB), 6);
    let appended = node.append(ISPB, &messages(ISPB, 5)).await;
    assert_eq!(appended[0].seq, 6, "confirming made room");
    node.stop().await;
}

/// A supplied `PI-ResourceId` that is not a sane id is refused as invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_supplied_resource_id_is_refused() {
    let node = TestNode::start(|_| {}).await;
    let long = "a".repeat(65);
    for bad in ["has space", "semi;colon", long.as_str()] {
        let response = node.post_xml(ISPB, message(ISPB), Some(bad)).await;
        assert!(response.status().is_client_error(), "{bad:?}: {}", response.status());
    }
    assert_eq!(node.next_seq(ISPB), 1);
    node.stop().await;
}

/// A repeat after the dedupe window is a new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_after_the_dedupe_window_is_stored_again() {
    let node = TestNode::start(|f| f.limits.dedupe_window_secs = 1).await;
    let body = message(ISPB);
    let (status, first) = appended(node.post_xml(ISPB, body.clone(), None).await).await;
    assert_eq!((status, first[0].seq), (StatusCode::CREATED, 1));
    let (status, again) = appended(node.post_xml(ISPB, body.clone(), None).await).await;
    assert_eq!((status, again[0].seq, again[0].duplicate), (StatusCode::OK, 1, true));
    tokio::time::sleep(Duration::from_millis(1200)).await; // let the 1 s window pass
    let (status, later) = appended(node.post_xml(ISPB, body, None).await).await;
    assert_eq!((status, later[0].seq, later[0].duplicate), (StatusCode::CREATED, 2, false));
    node.stop().await;
}

/// Dedupe is per ISPB: the same producer id for two participants is two messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_keys_are_per_ispb() {
    let node = TestNode::start(|_| {}).await;
    let (s1, a) = appended(node.post_xml(ISPB, message(ISPB), Some("shared-id-1")).await).await;
    let (s2, b) = appended(node.post_xml(OTHER_ISPB, message(OTHER_ISPB), Some("shared-id-1")).await).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(!a[0].duplicate && !b[0].duplicate);
    assert_eq!((node.next_seq(ISPB), node.next_seq(OTHER_ISPB)), (2, 2));
    node.stop().await;
}

/// Producer multipart bodies are read as RFC 2046 allows them: an unquoted boundary,
/// a preamble, transport padding after delimiters, an epilogue. The CRLF before each
/// delimiter belongs to the delimiter, not to the stored message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_multipart_follows_rfc2046() {
    let node = TestNode::start(|_| {}).await;
    let (a, b) = (message(ISPB), message(ISPB));
    let body = format!(
        "This is the preamble; it is to be ignored.\r\n\
         --simple-boundary-42\r\nContent-Type: application/xml\r\nPI-ResourceId: rfc2046-a\r\n\r\n{a}\r\n\
         --simple-boundary-42  \t\r\nContent-Type: application/xml\r\n\r\n{b}\r\n\
         --simple-boundary-42--\r\nThis is the epilogue; it is also to be ignored.\r\n"
    );
    let response = node.post_raw(ISPB, "multipart/mixed; boundary=simple-boundary-42", body).await;
    let (status, outcomes) = appended(response).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(outcomes.len(), 2, "two parts, preamble and epilogue ignored");
    assert_eq!(outcomes[0].resource_id, "rfc2046-a", "per-part PI-ResourceId");
    let stored = node.stored(ISPB, &[1, 2]);
    assert_eq!(stored[0].body.as_ref(), a.as_bytes(), "part 1 stored byte-exact, without the delimiter's CRLF");
    assert_eq!(stored[1].body.as_ref(), b.as_bytes(), "part 2 stored byte-exact");
    node.stop().await;
}
