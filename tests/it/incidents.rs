//! Incident walk-throughs (SPEC.md §7, "validate monitoring by walking through
//! simulated incidents"): each test drives a real condition on a real node while a
//! real Prometheus scrapes it every second and evaluates the shipped alert rules
//! (`ops/prometheus/alerts.yml`), and checks that the alert an operator relies on is
//! raised — before the harm it warns of: the lag alert while the oldest unconfirmed
//! message is still well inside the delivery SLA, the back-pressure alert while
//! producers are still accepted.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::harness::{ISPB, MULTI, Prometheus, TestNode, assert_problem, samples, start_path};

/// The delivery SLA the alerts are tuned for: a message should be pulled and
/// confirmed within a minute of its append (docs/runbooks/oldest-unconfirmed-age.md).
const SLA: Duration = Duration::from_secs(60);
/// How long an alert may take to show up: a scrape and a rule evaluation are one
/// second apart each; the rest is slack for a loaded machine.
const RAISED_WITHIN: Duration = Duration::from_secs(30);

fn pull_next_path(token: &str) -> String {
    format!("/api/v1/out/{ISPB}/stream/{token}")
}

/// Waits until Prometheus has seen `expr` at `value` (a scrape after the setup).
async fn seen(prometheus: &Prometheus, expr: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + RAISED_WITHIN;
    while prometheus.query(expr).await != Some(value) {
        assert!(tokio::time::Instant::now() < deadline, "Prometheus never saw {expr} = {value}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_raises_the_lag_alert_while_its_oldest_message_is_young() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 100).await;
    let prometheus = Prometheus::scraping(&node.api.internal).await;
    // The PSP pulls and confirms what arrives, then stops pulling.
    node.append(ISPB, &samples(ISPB, 5)).await;
    let (drained, _, _) = node.drain(ISPB, MULTI).await;
    assert_eq!(drained.len(), 5);
    let backlog = format!("pixstream_ispb_backlog{{ispb=\"{ISPB}\"}}");
    seen(&prometheus, &backlog, 0.0).await;

    // The upstream keeps settling payments: 1,500 messages nobody pulls.
    for _ in 0..15 {
        node.append(ISPB, &samples(ISPB, 100)).await;
    }
    let alert = prometheus.wait_raised("PixstreamLagSpike", RAISED_WITHIN).await;
    assert_eq!(alert.labels["ispb"], ISPB);
    assert!(alert.value > 1000.0, "the backlog grew by over 1,000: {alert:?}");
    let age = format!("pixstream_ispb_oldest_unconfirmed_age_seconds{{ispb=\"{ISPB}\"}}");
    let age = prometheus.query(&age).await.expect("the age is scraped");
    assert!(age < SLA.as_secs_f64() / 3.0, "raised while the oldest message is {age} s old, far inside the SLA");
    assert!(prometheus.active("PixstreamOldestUnconfirmedAge").await.is_empty(), "the lag alert comes first");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_replaying_forged_tokens_raises_the_invalid_token_alert() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 100).await;
    let prometheus = Prometheus::scraping(&node.api.internal).await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    let real = crate::harness::pulled(node.get(&start_path(ISPB), MULTI).await).await;
    // Tampered copies of a real token and plain garbage, over and over.
    let token = real.token().to_owned();
    for n in 0..25 {
        let mut forged = token.clone().into_bytes();
        let at = n % forged.len();
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = if n % 5 == 0 {
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()
        } else {
            String::from_utf8(forged).expect("ASCII token")
        };
        let answer = node.get(&pull_next_path(&forged), MULTI).await;
        assert_problem(answer, 400, "invalidCursor").await;
    }
    let alert = prometheus.wait_raised("PixstreamInvalidTokens", RAISED_WITHIN).await;
    assert!(alert.value > 20.0, "{alert:?}");
    // The PSP's real stream is untouched: its token still confirms and reads on.
    let next = node.get(&pull_next_path(&token), MULTI).await;
    assert_eq!(next.status(), StatusCode::NO_CONTENT);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psp_opening_streams_in_a_loop_raises_the_slot_exhaustion_alert() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 100).await;
    let prometheus = Prometheus::scraping(&node.api.internal).await;
    // A client that opens a stream per request and never closes them.
    let mut refused = 0;
    for _ in 0..45 {
        let answer = node.get(&start_path(ISPB), MULTI).await;
        match answer.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {}
            _ => {
                assert_problem(answer, 429, "tooManyStreams").await;
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 45 - 6, "six slots, every other open refused");
    let alert = prometheus.wait_raised("PixstreamStreamSlotExhaustion", RAISED_WITHIN).await;
    assert!(alert.value > 30.0, "{alert:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_flooding_a_stalled_tenant_raises_back_pressure_before_it_is_refused() {
    let node = TestNode::start(|f| f.tenants.max_backlog = 100).await;
    let prometheus = Prometheus::scraping(&node.api.internal).await;
    // 85 of 100: producers are still accepted, and the operator is warned.
    node.append(ISPB, &samples(ISPB, 85)).await;
    let alert = prometheus.wait_raised("PixstreamProducerBackPressure", RAISED_WITHIN).await;
    assert_eq!(alert.labels["ispb"], ISPB);
    assert!(alert.value > 0.8, "{alert:?}");
    // Past the limit the producer gets 503 with Retry-After, and it is counted.
    node.append(ISPB, &samples(ISPB, 15)).await;
    let refused = node.post_xml(ISPB, samples(ISPB, 1).remove(0), None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 503, "unavailable").await;
    seen(&prometheus, "pixstream_throttled_total{cause=\"back_pressure\"}", 1.0).await;
    assert_eq!(prometheus.query(&format!("pixstream_ispb_back_pressure{{ispb=\"{ISPB}\"}}")).await, Some(1.0));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psp_flooding_past_its_rate_limit_raises_the_abuse_alert() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 100;
        f.tenants.rate_per_sec = 5;
        f.tenants.rate_burst = 5;
    })
    .await;
    let prometheus = Prometheus::scraping(&node.api.internal).await;
    let path = start_path(ISPB);
    let statuses: Vec<StatusCode> = futures::stream::iter(0..2_500)
        .map(|_| async { node.get(&path, MULTI).await.status() })
        .buffer_unordered(16)
        .collect()
        .await;
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited > 2_000, "the flood is refused: {limited} of 2,500");
    let alert = prometheus.wait_raised("PixstreamRateLimitAbuse", RAISED_WITHIN).await;
    assert!(alert.value > 5.0, "{alert:?}");
    node.stop().await;
}
