//! Connection hardening (SPEC.md §6 "limits everywhere"): each limit gets the bad
//! input it exists for — headers trickled a byte at a time (slowloris), an idle
//! keep-alive connection, too many and too large headers, a stalled TLS handshake,
//! a body that never finishes, one connection over the cap, an append over the appends
//! served at once — and the test checks the answer and that a well-behaved client is
//! served meanwhile.

use std::time::{Duration, Instant};

use pixstream::config::{ClientAuth, ConfigFile};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ISPB, MULTI, Pki, TestNode, assert_problem, message, pulled, samples, start_path};

/// Header read timeout of these tests: short, so the slow clients are cut quickly.
const HEADER_READ_TIMEOUT_MS: u64 = 1_000;
/// What a cut-off may take beyond its timeout on a loaded test machine.
const SLACK: Duration = Duration::from_secs(4);

async fn node_with(tweak: impl FnOnce(&mut ConfigFile)) -> TestNode {
    TestNode::start(|file| {
        file.listeners.header_read_timeout_ms = HEADER_READ_TIMEOUT_MS;
        tweak(file);
    })
    .await
}

fn host_port(base: &str) -> String {
    base.rsplit("://").next().expect("base URL").to_owned()
}

/// Reads until the server closes the connection (or `within` passes); returns
/// what arrived and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// A producer request that announces 1,000 body bytes and sends five.
async fn stalled_append(node: &TestNode) -> TcpStream {
    let mut stream = TcpStream::connect(host_port(&node.api.internal)).await.expect("connect");
    let head = format!(
        "POST /internal/v1/out/{ISPB}/msgs HTTP/1.1\r\nHost: pixstream\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<?xml"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream
}

/// A well-behaved PSP request: the node answers it.
async fn served(node: &TestNode) {
    let response = node.get(&start_path(ISPB), MULTI).await;
    assert!(response.status().is_success(), "a well-behaved client is served: {}", response.status());
    let _ = response.bytes().await;
}

#[tokio::test]
async fn headers_trickled_a_byte_at_a_time_are_cut_off_while_others_are_served() {
    let node = node_with(|_| {}).await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    let mut slow = TcpStream::connect(host_port(&node.api.public)).await.expect("connect");
    slow.write_all(format!("GET {} HTTP/1.1\r\nHost: pixstream\r\n", start_path(ISPB)).as_bytes()).await.expect("send");
    let started = Instant::now();
    let trickle = async {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle().take(200) {
            if slow.write_all(&[*byte]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    };
    let (cut_after, ()) = tokio::join!(trickle, served(&node));
    assert!(
        cut_after < Duration::from_millis(HEADER_READ_TIMEOUT_MS) + SLACK,
        "the slow head was cut off after {cut_after:?} (header read timeout {HEADER_READ_TIMEOUT_MS} ms)"
    );
    node.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let node = node_with(|_| {}).await;
    let mut stream = TcpStream::connect(host_port(&node.api.internal)).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: pixstream\r\n\r\n").await.expect("send");
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer).await.expect("answer");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
    let idle_from = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_millis(HEADER_READ_TIMEOUT_MS) + SLACK).await;
    assert!(closed, "the idle keep-alive connection is closed by the server");
    assert!(idle_from.elapsed() >= Duration::from_millis(HEADER_READ_TIMEOUT_MS / 2), "not before its idle time");
    node.stop().await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431() {
    let node = node_with(|file| {
        file.listeners.max_headers = 16;
        file.listeners.max_header_bytes = 8 << 10;
    })
    .await;
    let url = format!("{}{}", node.api.public, start_path(ISPB));
    let mut many = node.api.client.get(&url);
    for i in 0..20 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    assert_eq!(many.send().await.expect("answered").status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let large = node.api.client.get(&url).header("x-large", "a".repeat(10 << 10)).send().await.expect("answered");
    assert_eq!(large.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    served(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408_and_nothing_is_stored() {
    let node = node_with(|file| {
        file.limits.long_poll_wait_ms = 100;
        file.listeners.request_timeout_ms = 5_100;
        // The slow body must outlast the request timeout, not the idle timeout.
        file.listeners.header_read_timeout_ms = 20_000;
    })
    .await;
    let mut stream = stalled_append(&node).await;
    served(&node).await;
    let (answer, _) = read_until_closed(&mut stream, Duration::from_millis(5_100) + SLACK).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a stalled body is answered 408: {answer}");
    assert!(answer.contains("/api/v1/error/requestTimeout"), "as a problem: {answer}");
    assert_eq!(node.next_seq(ISPB), 1, "nothing was stored");
    node.stop().await;
}

#[tokio::test]
async fn long_polls_are_not_cut_by_the_request_timeout() {
    let node = node_with(|file| {
        file.limits.long_poll_wait_ms = 2_000;
        file.listeners.request_timeout_ms = 7_000;
    })
    .await;
    let started = Instant::now();
    let response = node.get(&start_path(ISPB), MULTI).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "the long poll ran its course");
    // Long-poll deadlines are spread over 90-100 % of the wait.
    assert!(started.elapsed() >= Duration::from_millis(1_800), "it waited the whole long poll");
    node.stop().await;
}

#[tokio::test]
async fn one_connection_over_the_cap_is_answered_503_and_the_slots_come_back() {
    let node = node_with(|file| file.listeners.max_connections = 2).await;
    let address = host_port(&node.api.public);
    let first = TcpStream::connect(&address).await.expect("connect");
    let second = TcpStream::connect(&address).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(&address).await.expect("the kernel accepts");
    let (answer, closed) = read_until_closed(&mut third, SLACK).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "over the cap: {answer}");
    assert!(answer.contains("Retry-After: 1") && answer.contains("/api/v1/error/unavailable"), "{answer}");
    assert!(closed, "and the connection is closed");
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(200)).await;
    served(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off_while_others_are_served() {
    let pki = Pki::new("test CA");
    pki.server("node");
    let tls = pki.server_tls(ClientAuth::None, None);
    let node = node_with(move |file| {
        file.listeners.tls_handshake_timeout_ms = 500;
        file.listeners.header_read_timeout_ms = 20_000;
        file.tls.public = Some(tls);
    })
    .await;
    let mut stalled = TcpStream::connect(host_port(&node.api.public)).await.expect("connect");
    let started = Instant::now();
    let client = pki.https_client(None);
    let response = client.get(format!("{}{}", node.api.public, start_path(ISPB))).send().await.expect("served");
    assert!(response.status().is_success(), "a TLS client is served meanwhile");
    let (_, closed) = read_until_closed(&mut stalled, Duration::from_millis(500) + SLACK).await;
    assert!(closed, "the silent connection was closed after {:?}", started.elapsed());
    node.stop().await;
}

#[tokio::test]
async fn strict_header_mode_still_refuses_unknown_headers_over_tls() {
    let pki = Pki::new("test CA");
    pki.server("node");
    let tls = pki.server_tls(ClientAuth::None, None);
    let node = node_with(move |file| {
        file.http.strict_headers = true;
        file.tls.public = Some(tls);
    })
    .await;
    let client = pki.https_client(None);
    let url = format!("{}{}", node.api.public, start_path(ISPB));
    let refused = client.get(&url).header("x-not-icom", "1").send().await.expect("answered");
    assert_problem(refused, 400, "invalidHeader").await;
    assert!(client.get(&url).send().await.expect("answered").status().is_success());
    node.stop().await;
}

#[tokio::test]
async fn over_max_in_flight_new_work_is_shed_with_503_while_open_streams_read_on_and_waiting_long_polls_do_not_count() {
    let node = node_with(|file| {
        file.listeners.max_in_flight = 1;
        file.limits.long_poll_wait_ms = 2_000;
    })
    .await;
    // Two long polls that only wait: neither counts, so both are admitted.
    let path = start_path(ISPB);
    let (first, second) = tokio::join!(node.get(&path, MULTI), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        node.get(&path, MULTI).await
    });
    assert_eq!((first.status(), second.status()), (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT));
    let first = pulled(first).await;

    // A producer request stalled in its body upload is work: it takes the one place.
    node.append(ISPB, &samples(ISPB, 1)).await;
    let slow = stalled_append(&node).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = node.get(&start_path(ISPB), MULTI).await;
    let problem = assert_problem(shed, 503, "unavailable").await;
    assert!(problem.detail.contains("overloaded"), "{}", problem.detail);
    // An open stream is still read and closed: only new work is shed.
    let read = pulled(node.get(&first.next, MULTI).await).await;
    assert_eq!((read.status, read.messages.len()), (StatusCode::OK, 1), "the open stream reads on");
    assert_eq!(node.delete(&read.next).await.status(), StatusCode::OK, "and closes");
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    served(&node).await;
    assert_eq!(node.app().load.shed(), 1, "one request was shed");
    node.stop().await;
}

#[tokio::test]
async fn over_max_in_flight_appends_an_append_is_shed_with_503_while_other_work_is_served() {
    let node = node_with(|file| {
        file.listeners.max_in_flight_appends = 1;
        file.limits.long_poll_wait_ms = 500;
    })
    .await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    // An append stalled in its body upload holds the one append place.
    let slow = stalled_append(&node).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.app().load.appends_now(), 1);
    let refused = node.post_xml(ISPB, message(ISPB), None).await;
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let problem = assert_problem(refused, 503, "unavailable").await;
    assert!(problem.detail.contains("overloaded"), "{}", problem.detail);
    // Other new work is admitted: a stream opens and gets the one stored message.
    let read = pulled(node.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!((read.status, read.messages.len()), (StatusCode::OK, 1), "only appends are over their bound");
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.post_xml(ISPB, message(ISPB), None).await.status(), StatusCode::CREATED, "a place is free again");
    assert_eq!(node.app().load.shed(), 1, "one append was shed");
    assert_eq!(node.tenant(ISPB).expect("tenant").next_seq, 3, "the shed append stored nothing");
    node.stop().await;
}
