//! Error answers (SPEC §2.6): every one an RFC 7807 XML problem with the right status
//! and code — bad ISPBs, unknown routes and methods, unknown tenants, strict headers.

use reqwest::{Method, StatusCode};
use wire::paths::{append_path, pull_next_path, stream_start_path};

use crate::harness::*;

const BAD_ISPBS: [&str; 5] = ["1234567", "abcdefgh", "123456789", "3207498a", "3207-986"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ispb_in_the_path_is_invalid_ispb_everywhere() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let pull = node.start_stream(ISPB, SINGLE).await;
    let token = pull.token().to_owned();
    for bad in BAD_ISPBS {
        assert_problem(node.get(&start_path(bad), MULTI).await, 400, "invalidIspb").await;
        let with_token = pull_next_path(bad, &token);
        assert_problem(node.get(&with_token, MULTI).await, 400, "invalidIspb").await;
        assert_problem(node.delete(&with_token).await, 400, "invalidIspb").await;
        let post = node.post_xml(bad, message(ISPB), None).await;
        assert_problem(post, 400, "invalidIspb").await;
    }
    assert_eq!(node.open_streams(ISPB), 1);
    assert_eq!(node.watermark(ISPB), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let node = TestNode::start(|_| {}).await;
    for path in [
        "/",
        "/api/v1/out",
        "/api/v1/out/32074986",
        "/api/v1/out/32074986/nothing",
        "/api/v1/out/32074986/stream",
        "/api/v2/out/32074986/stream/start",
    ] {
        assert_problem(node.get(path, MULTI).await, 404, "notFound").await;
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let response = node.request(method.clone(), &start_path(ISPB), &[]).await;
        assert_problem(response, 405, "methodNotAllowed").await;
    }
    let response = node.request(Method::POST, &pull_next_path(ISPB, "sometoken"), &[]).await;
    assert_problem(response, 405, "methodNotAllowed").await;
    assert_eq!(node.open_streams(ISPB), 0, "nothing opened a stream");

    // The producer API is only on the internal listener, the pull API only public.
    let on_public = node.request(Method::POST, &append_path(ISPB), &[("content-type", "application/xml")]).await;
    assert_problem(on_public, 404, "notFound").await;
    let on_internal = node.client.get(format!("{}{}", node.internal, start_path(ISPB))).send().await.expect("answered");
    assert_problem(on_internal, 404, "notFound").await;
    let get_msgs = node.client.get(format!("{}{}", node.internal, append_path(ISPB))).send().await.expect("answered");
    assert_problem(get_msgs, 405, "methodNotAllowed").await;
    assert_eq!(node.next_seq(ISPB), 1);
    node.stop().await;
}

/// A token segment that does not even percent-decode to UTF-8 is still an invalid
/// cursor answered with an RFC 7807 problem (SPEC §2.6: every error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_token_segment_gets_a_problem() {
    let node = TestNode::start(|_| {}).await;
    let response = node.get(&pull_next_path(ISPB, "%FF%FE"), MULTI).await;
    assert_problem(response, 400, "invalidCursor").await;
    let response = node.delete(&pull_next_path(ISPB, "%FF%FE")).await;
    assert_problem(response, 400, "invalidCursor").await;
    node.stop().await;
}

/// An ISPB segment that does not percent-decode to UTF-8 is an invalid ISPB, as an
/// RFC 7807 problem, on both listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_ispb_segment_gets_a_problem() {
    let node = TestNode::start(|_| {}).await;
    let response = node.get(&stream_start_path("%FF%FE%FD%FC%FB%FA%F9%F8"), MULTI).await;
    assert_problem(response, 400, "invalidIspb").await;
    let response = node.post_raw("%FF%FE%FD%FC%FB%FA%F9%F8", "application/xml", message(ISPB)).await;
    assert_problem(response, 400, "invalidIspb").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_ispb_is_tenant_not_found_without_auto_create() {
    let node = TestNode::start(|f| f.tenants.auto_create = false).await;
    assert_problem(node.get(&start_path(ISPB), MULTI).await, 404, "tenantNotFound").await;
    assert_problem(node.post_xml(ISPB, message(ISPB), None).await, 404, "tenantNotFound").await;
    assert!(node.tenant(ISPB).is_none(), "no tenant was created");
    assert!(node.stored(ISPB, &[1]).is_empty(), "nothing was stored");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_header_mode_refuses_headers_outside_the_icom_allow_list() {
    let node = TestNode::start(|f| {
        f.http.strict_headers = true;
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    for (name, value) in
        [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("x-request-id", "abc")]
    {
        let response =
            node.request(Method::GET, &start_path(ISPB), &[("accept", "multipart/mixed"), (name, value)]).await;
        let problem = assert_problem(response, 400, "invalidHeader").await;
        assert!(problem.detail.contains(name), "detail names the header: {}", problem.detail);
    }
    assert_eq!(node.open_streams(ISPB), 0);
    let allowed = [
        ("accept", "multipart/mixed"),
        ("accept-encoding", "gzip"),
        ("user-agent", "icom-client/1.0"),
        ("connection", "keep-alive"),
        ("via", "1.1 proxy"),
        ("max-forwards", "3"),
    ];
    let ok = pulled(node.request(Method::GET, &start_path(ISPB), &allowed).await).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    node.stop().await;
}

/// Without strict mode, extra headers are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_headers_are_ignored_by_default() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    let response =
        node.request(Method::GET, &start_path(ISPB), &[("traceparent", "00-abc"), ("x-request-id", "1")]).await;
    assert_eq!(pulled(response).await.status, StatusCode::NO_CONTENT);
    node.stop().await;
}

/// `Host` with or without a port is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_with_or_without_port_is_accepted() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    for host in ["pix.example.com", "pix.example.com:443", "127.0.0.1"] {
        let response = node.request(Method::GET, &start_path(ISPB), &[("host", host)]).await;
        let pull = pulled(response).await;
        assert_eq!(pull.status, StatusCode::NO_CONTENT, "Host: {host}");
        assert_eq!(node.delete(&pull.next).await.status(), StatusCode::OK);
    }
    node.stop().await;
}

/// SPEC §2.4: every response carries `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_rate_limit_headers() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    let ok = node.get(&start_path(ISPB), MULTI).await;
    let refused = node.get(&start_path("1234567"), MULTI).await;
    for response in [ok, refused] {
        for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            let value =
                header(response.headers(), name).unwrap_or_else(|| panic!("{} without {name}", response.status()));
            assert!(value.parse::<u64>().is_ok(), "{name}: {value:?} is an integer");
        }
    }
    node.stop().await;
}

/// SPEC §2.4: over its token bucket an ISPB gets 429 `rateLimited` with an integer
/// `Retry-After`, the refused request changes nothing, and another ISPB is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ispb_over_its_rate_gets_429_and_others_are_served() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
        f.tenants.rate_per_sec = 1;
        f.tenants.rate_burst = 2;
    })
    .await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let first = node.get(&start_path(ISPB), MULTI).await;
    assert_eq!(header(first.headers(), "ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(header(first.headers(), "ratelimit-remaining").as_deref(), Some("1"));
    let first = pulled(first).await;
    let second = node.get(&start_path(ISPB), MULTI).await;
    assert_eq!(header(second.headers(), "ratelimit-remaining").as_deref(), Some("0"));
    let _ = second.bytes().await;
    let refused = node.get(&first.next, MULTI).await;
    let problem = assert_problem(refused, 429, "rateLimited").await;
    assert!(retry_after(&problem.headers) >= 1, "an integer Retry-After of at least 1 s");
    assert_eq!(node.watermark(ISPB), 1, "the refused request confirmed nothing");
    let other = node.get(&start_path(OTHER_ISPB), MULTI).await;
    assert!(other.status().is_success(), "another ISPB has its own bucket: {}", other.status());
    node.stop().await;
}
