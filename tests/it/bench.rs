//! The load tool (`pixstream bench`) run as a library call against an in-process node
//! at tiny scale: a fixed-duration run with producers at a rate, the same followed by
//! a drain, and a preload drain (also one message per pull) must each deliver and end
//! with a clean verdict; a drain that cannot finish in time must fail the run. With a
//! low tenant rate limit, a flood of one extra ISPB is refused `429 rateLimited` while
//! the measured ISPBs are not, and the report keeps the two apart. The pullers' own
//! HTTP/1.1 connection survives the node closing it while idle, and the pooled
//! clients of `--http2` runs deliver too. Functional checks only: nothing here is
//! timed.

use std::time::Duration;

use http::header::ACCEPT;
use http::{HeaderValue, Method, StatusCode};
use loadgen::connection::Connection;
use loadgen::{BenchArgs, Report, run_bench};

use crate::harness::{ISPB, TestNode, start_path};

fn args(node: &TestNode, extra: &[&str]) -> BenchArgs {
    let mut argv = vec![
        "--url".to_owned(),
        node.public.clone(),
        "--internal-url".to_owned(),
        node.internal.clone(),
        "--message-bytes".to_owned(),
        "1024".to_owned(),
        "--progress".to_owned(),
        "1".to_owned(),
        "--timeout".to_owned(),
        "10".to_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    BenchArgs::from_args(argv).expect("valid bench arguments")
}

fn assert_clean(report: &Report) {
    assert!(report.verdict.clean, "verdict not clean:\n{report}");
    let ledger = &report.ledger;
    assert_eq!(ledger.counts.double_outstanding, 0, "{report}");
    assert_eq!(ledger.counts.order_violations, 0, "{report}");
    assert_eq!(ledger.counts.id_mismatches, 0, "{report}");
    assert_eq!(ledger.counts.malformed, 0, "{report}");
    assert_eq!(ledger.foreign, 0, "a fresh node has no messages of earlier runs: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_at_a_fixed_rate_delivers_with_a_clean_verdict() {
    let node = TestNode::start(|_| {}).await;
    let report = run_bench(args(
        &node,
        &["--ispbs", "5", "--streams", "2", "--duration", "2", "--rate", "150", "--batch", "5", "--producers", "8"],
    ))
    .await
    .expect("bench runs");
    assert_clean(&report);
    assert_eq!(report.mode, "duration");
    assert!(report.ledger.produced >= 100, "about 300 messages at 150/s for 2 s: {report}");
    assert!(report.ledger.delivered > 0 && report.messages.delivered > 0, "{report}");
    assert!(report.pulls.with_messages > 0 && report.pulls.per_minute > 0.0, "{report}");
    assert!(report.latency.pull_with_messages.count > 0 && report.latency.end_to_end.count > 0, "{report}");
    assert!(report.errors.is_empty(), "no failed requests expected: {:?}", report.errors);
    // Every answer inside the window is counted by class; the timed pulls are the
    // served ones among them.
    let answers = &report.answers;
    assert_eq!(answers.pullers.served, answers.pullers.requests, "{report}");
    assert_eq!(answers.pullers.by_answer.get("200").copied().unwrap_or(0), report.pulls.with_messages, "{report}");
    assert_eq!(answers.pullers.by_answer.get("204").copied().unwrap_or(0), report.pulls.empty, "{report}");
    assert!(answers.producers.served > 0 && answers.producers.served == answers.producers.requests, "{report}");
    assert_eq!((answers.all.shed, answers.all.shed_share), (0, 0.0), "{report}");
    assert!(report.flood.is_none());
    // Every puller closed its stream.
    for i in 0..5 {
        assert_eq!(node.open_streams(&format!("B000000{i}")), 0, "streams left open:\n{report}");
    }
    let json = serde_json::to_value(&report).expect("report serialises");
    assert_eq!(json["verdict"]["clean"], true);
    assert!(json["latency"]["pull_with_messages"]["p99_ms"].is_number());
    assert_eq!(json["latency"]["of"], "served requests only");
    assert!(
        json["answers"]["all"]["shed_share"].is_number() && json["answers"]["pullers"]["by_answer"]["200"].is_u64()
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_with_drain_receives_everything_it_produced() {
    let node = TestNode::start(|_| {}).await;
    let report = run_bench(args(
        &node,
        &[
            "--ispbs",
            "4",
            "--streams",
            "3",
            "--duration",
            "1",
            "--rate",
            "200",
            "--batch",
            "10",
            "--drain",
            "--http-floor",
            "1",
        ],
    ))
    .await
    .expect("bench runs");
    assert_clean(&report);
    assert_eq!(report.mode, "duration+drain");
    // The cost of the window, read from the node's own /metrics around it.
    let cost = report.cost.as_ref().expect("cost section");
    assert!(cost.server_us_per_pull.is_some_and(|us| us > 0.0), "{report}");
    assert!(cost.pulls > 0 && cost.messages > 0, "{report}");
    assert!(cost.per_message.get("proposals").is_some_and(|n| *n > 0.0), "appends and pulls were proposed: {report}");
    assert!(cost.per_message.get("write_batches").is_some_and(|n| *n > 0.0), "{report}");
    let floor = report.floor.as_ref().expect("floor section");
    assert!(floor.requests > 0 && floor.server_us_per_request.is_some(), "{report}");
    let drain = report.drain.as_ref().expect("drain section");
    assert!(drain.drained, "{report}");
    assert!(report.ledger.loss_checked && report.ledger.undelivered == 0 && report.ledger.seq_gaps == 0, "{report}");
    assert_eq!(report.ledger.delivered, report.ledger.produced, "{report}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_preload_drains_every_message_to_every_ispb() {
    let node = TestNode::start(|_| {}).await;
    let report = run_bench(args(
        &node,
        &[
            "--ispbs",
            "5",
            "--streams",
            "3",
            "--preload",
            "60",
            "--batch",
            "20",
            "--duration",
            "30",
            "--ispb-prefix",
            "D",
        ],
    ))
    .await
    .expect("bench runs");
    assert_clean(&report);
    assert_eq!(report.mode, "drain");
    assert_eq!(report.ledger.produced, 300, "{report}");
    assert_eq!(report.ledger.delivered, 300, "{report}");
    assert_eq!(report.ledger.undelivered, 0, "{report}");
    let drain = report.drain.as_ref().expect("drain section");
    assert!(drain.drained && drain.time_to_empty_secs.is_some(), "{report}");
    for i in 0..5 {
        let ispb = format!("D000000{i}");
        assert_eq!(node.watermark(&ispb), 61, "every message confirmed: {ispb}\n{report}");
        assert_eq!(node.open_streams(&ispb), 0, "{ispb}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_single_pulls_one_message_per_request() {
    let node = TestNode::start(|_| {}).await;
    let report = run_bench(args(
        &node,
        &["--ispbs", "3", "--streams", "2", "--preload", "20", "--batch", "10", "--duration", "30", "--single"],
    ))
    .await
    .expect("bench runs");
    assert_clean(&report);
    assert!(report.setup.single, "{report}");
    assert_eq!(report.ledger.delivered, 60, "{report}");
    assert_eq!(report.pulls.with_messages, 60, "a backlog still comes one message per pull: {report}");
    assert!((report.messages.mean_batch - 1.0).abs() < f64::EPSILON, "{report}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_over_http2_drains_through_the_pooled_clients() {
    let node = TestNode::start(|_| {}).await;
    let report = run_bench(args(
        &node,
        &["--ispbs", "3", "--streams", "2", "--preload", "20", "--batch", "10", "--duration", "30", "--http2"],
    ))
    .await
    .expect("bench runs");
    assert_clean(&report);
    assert!(report.setup.http2, "{report}");
    assert_eq!(report.ledger.delivered, 60, "{report}");
    node.stop().await;
}

/// The pullers' own connection: one the node closed while it sat idle (its header
/// read timeout) is replaced by the next request, which is answered as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pullers_connection_the_node_closed_while_idle_is_replaced_by_the_next_request() {
    let node = TestNode::start(|file| file.listeners.header_read_timeout_ms = 300).await;
    assert!(Connection::new("https://127.0.0.1:1", Duration::from_secs(1)).is_none(), "plain HTTP only");
    let mut connection = Connection::new(&node.public, Duration::from_secs(10)).expect("a plain HTTP base");
    let accept = [(ACCEPT, HeaderValue::from_static("multipart/mixed"))];
    let path = start_path(ISPB);
    let first = connection.exchange(Method::GET, &path, &accept).await.expect("first answer");
    assert!(matches!(first.status, StatusCode::OK | StatusCode::NO_CONTENT), "{}", first.status);
    let next = first.headers.get("pi-pull-next").expect("PI-Pull-Next").to_str().expect("ASCII").to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = connection.exchange(Method::DELETE, &next, &[]).await.expect("answered on a new connection");
    assert_eq!(second.status, StatusCode::OK, "the stream is closed with its token");
    assert_eq!(node.open_streams(ISPB), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_does_not_finish_in_time_fails_the_run_and_still_writes_the_report() {
    let node = TestNode::start(|_| {}).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    // One stream cannot take 10,000 messages one per pull within a second (in
    // batches of 10 the pullers' own connections came close to it).
    let json_arg = json.to_str().expect("utf-8 path").to_owned();
    let argv = [
        "--ispbs",
        "1",
        "--streams",
        "1",
        "--preload",
        "10000",
        "--batch",
        "100",
        "--single",
        "--duration",
        "1",
        "--json",
        &json_arg,
    ];
    let error = loadgen::run(args(&node, &argv)).await.expect_err("verdict is not clean");
    assert!(error.to_string().contains("NOT CLEAN") && error.to_string().contains("lost"), "{error}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("JSON report");
    assert_eq!(report["verdict"]["clean"], false);
    assert_eq!(report["drain"]["drained"], false);
    assert_eq!(report["ledger"]["produced"], 10000);
    let undelivered = report["ledger"]["undelivered"].as_u64().expect("number");
    assert!(undelivered > 0 && report["ledger"]["loss_checked"] == true, "{report}");
    node.stop().await;
}

/// SPEC §2.4 isolation, seen by the load tool: tenants limited to 20 requests/s
/// (burst 20); three measured ISPBs far under that; one more ISPB flooded with
/// stream/start at 400/s (20x its limit). The flood is answered mostly 429
/// rateLimited (the rest 429 tooManyStreams, or the long polls of the six streams it
/// may open), the measured ISPBs never 429, and the verdict stays clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_ispb_is_rate_limited_and_the_measured_ispbs_are_not() {
    let node = TestNode::start(|f| {
        f.tenants.rate_per_sec = 20;
        f.tenants.rate_burst = 20;
        // 1 s long polls: two streams of an ISPB stay far under 20 requests/s.
        f.limits.long_poll_wait_ms = 1_000;
    })
    .await;
    let argv = [
        "--ispbs",
        "3",
        "--streams",
        "2",
        "--duration",
        "3",
        "--rate",
        "30",
        "--batch",
        "5",
        "--producers",
        "4",
        "--flood-ispb",
        "99999999",
        "--flood-rate",
        "400",
    ];
    let report = run_bench(args(&node, &argv)).await.expect("bench runs");
    assert_clean(&report);
    assert!(report.ledger.delivered > 0, "{report}");
    let flood = report.flood.as_ref().expect("flood section");
    assert_eq!((flood.ispb.as_str(), flood.rate), ("99999999", 400));
    let answers = &flood.answers;
    assert!(answers.requests > 0 && flood.sent >= answers.requests, "{report}");
    assert!(answers.rate_limited * 2 > answers.requests, "mostly 429 rateLimited: {report}");
    assert!(flood.rate_limited_share > 0.5, "{report}");
    for label in answers.by_answer.keys() {
        let expected = ["200", "204", "429 rateLimited", "429 tooManyStreams"];
        assert!(expected.contains(&label.as_str()), "unexpected flood answer {label}: {report}");
    }
    // The measured ISPBs: served, never rate limited, and none of the flood in their
    // numbers.
    let measured = &report.answers;
    assert_eq!(measured.all.rate_limited, 0, "{report}");
    assert_eq!(measured.all.too_many_streams, 0, "{report}");
    assert!(measured.pullers.served > 0 && measured.producers.served > 0, "{report}");
    assert!(report.errors.keys().all(|k| !k.contains("429")), "no 429 over the whole run: {:?}", report.errors);
    assert_eq!(node.next_seq("99999999"), 1, "nothing was produced to the flooded ISPB");
    assert!(node.open_streams("99999999") <= 6, "the flood opened at most max_streams streams");
    let json = serde_json::to_value(&report).expect("report serialises");
    assert!(json["flood"]["answers"]["rate_limited"].as_u64().is_some_and(|n| n > 0), "{json}");
    assert_eq!(json["answers"]["all"]["rate_limited"], 0);
    node.stop().await;
}

#[tokio::test]
async fn bench_refuses_bad_arguments_and_unreachable_nodes() {
    let bad = BenchArgs::from_args(["--ispb-prefix", "b"]).expect("parses");
    let error = run_bench(bad).await.expect_err("lowercase prefix refused");
    assert!(error.to_string().contains("--ispb-prefix"), "{error}");
    let too_many = BenchArgs::from_args(["--ispb-prefix", "ABCDEF", "--ispbs", "101"]).expect("parses");
    assert!(run_bench(too_many).await.is_err());
    let measured_flood =
        BenchArgs::from_args(["--ispbs", "5", "--flood-ispb", "B0000003", "--flood-rate", "10"]).expect("parses");
    let error = run_bench(measured_flood).await.expect_err("the flood must not hit a measured ISPB");
    assert!(error.to_string().contains("--flood-ispb"), "{error}");
    assert!(BenchArgs::from_args(["--flood-ispb", "99999999"]).is_err(), "a flood needs a rate");
    let no_floor_connections = BenchArgs::from_args(["--http-floor", "2", "--floor-connections", "0"]).expect("parses");
    let error = run_bench(no_floor_connections).await.expect_err("a floor needs connections");
    assert!(error.to_string().contains("--floor-connections"), "refused before anything is sent: {error}");
    let nowhere =
        BenchArgs::from_args(["--url", "http://127.0.0.1:9", "--internal-url", "http://127.0.0.1:9"]).expect("parses");
    let error = run_bench(nowhere).await.expect_err("unreachable");
    assert!(error.to_string().contains("does not answer"), "{error}");
}
