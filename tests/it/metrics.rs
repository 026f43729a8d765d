//! `/metrics` (SPEC.md §7): the Prometheus exposition counts requests by route and
//! status and problems by code, reports per-ISPB backlog and the shards' Raft state,
//! stays well-formed, and stays bounded however many ISPBs the node holds. A request
//! forwarded to the shard leader is counted there under its own route.

use std::collections::BTreeMap;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::harness::{ISPB, MULTI, TestCluster, TestNode, message, pulled, samples, start_path, timing};

/// Every sample of an exposition: `name{labels}` → value. Asserts the text format:
/// `# HELP`/`# TYPE` comments, `name{k="v",...} value` lines, and that `promtool
/// check metrics` (Debian's `prometheus` package; scripts/check installs it) finds
/// nothing to complain about.
fn parse(text: &str) -> BTreeMap<String, f64> {
    promtool_accepts(text);
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.starts_with("pixstream_")
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "metric name {name:?} follows the conventions"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        assert!(samples.insert(series.to_owned(), value).is_none(), "series twice: {series}");
    }
    samples
}

fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; scripts/check installs it)");
    check.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let output = check.wait_with_output().expect("promtool finishes");
    let complaints = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && complaints.trim().is_empty(), "promtool check metrics: {complaints}");
}

async fn scrape(node: &TestNode) -> String {
    scrape_api(&node.api).await
}

async fn scrape_api(api: &crate::harness::Api) -> String {
    let response = api.client.get(format!("{}/metrics", api.internal)).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_problems_backlog_and_shards_are_exposed() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 100;
        f.storage.fsync = true;
    })
    .await;
    node.append(ISPB, &samples(ISPB, 3)).await;
    let first = pulled(node.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!(first.messages.len(), 3);
    let bad = node.get(&format!("/api/v1/out/{ISPB}/stream/AAAAAAAAAAAAAAAA"), MULTI).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let samples = parse(&scrape(&node).await);
    let value = |series: &str| *samples.get(series).unwrap_or_else(|| panic!("{series} missing: {samples:#?}"));
    assert_eq!(value(r#"pixstream_requests_total{route="stream_start",status="200"}"#), 1.0);
    assert_eq!(value(r#"pixstream_requests_total{route="append",status="201"}"#), 1.0);
    assert_eq!(value(r#"pixstream_problems_total{code="invalidCursor"}"#), 1.0, "invalid tokens are counted");
    assert_eq!(value(&format!(r#"pixstream_ispb_backlog{{ispb="{ISPB}"}}"#)), 3.0, "handed out, not confirmed");
    assert_eq!(value(&format!(r#"pixstream_ispb_open_streams{{ispb="{ISPB}"}}"#)), 1.0);
    assert!(value(&format!(r#"pixstream_ispb_oldest_unconfirmed_age_seconds{{ispb="{ISPB}"}}"#)) >= 0.0);
    assert_eq!(value("pixstream_backlog"), 3.0);
    assert!(value(r#"pixstream_request_duration_seconds_count{route="stream_start",outcome="messages"}"#) >= 1.0);
    let shard = node.app().shards.shard_for(&storage::Ispb::parse(ISPB).expect("ISPB"));
    assert_eq!(value(&format!(r#"pixstream_shard_leader{{shard="{shard}"}}"#)), 1.0);
    assert!(value(&format!(r#"pixstream_shard_applied_index{{shard="{shard}"}}"#)) >= 1.0);
    assert_eq!(value(&format!(r#"pixstream_shard_leader_known{{shard="{shard}"}}"#)), 1.0);
    assert!(value(&format!(r#"pixstream_shard_proposals_total{{shard="{shard}"}}"#)) >= 2.0, "append and open");
    let entries = value(&format!(r#"pixstream_shard_proposal_entries_total{{shard="{shard}"}}"#));
    assert!(entries >= 1.0 && entries <= value(&format!(r#"pixstream_shard_proposals_total{{shard="{shard}"}}"#)));
    assert_eq!(value(&format!(r#"pixstream_ispb_stream_slots{{ispb="{ISPB}"}}"#)), 6.0);
    assert_eq!(value(&format!(r#"pixstream_ispb_back_pressure{{ispb="{ISPB}"}}"#)), 0.0);
    assert_eq!(value(&format!(r#"pixstream_ispb_backlog_limit{{ispb="{ISPB}"}}"#)), 1_000_000.0);
    assert_eq!(value(&format!(r#"pixstream_ispb_pulls_total{{ispb="{ISPB}"}}"#)), 1.0, "the answered pull");
    assert!(value("pixstream_process_resident_memory_bytes") > 0.0);
    assert!(value("pixstream_process_cpu_seconds_total") > 0.0);
    assert!(value(r#"pixstream_process_context_switches_total{kind="voluntary"}"#) > 0.0);
    assert!(value(r#"pixstream_process_io_syscalls_total{kind="read"}"#) > 0.0, "sockets were read");
    let writes = value("pixstream_storage_writes_total");
    assert!(writes >= 4.0, "two Raft log appends and two applies at least: {writes}");
    assert!(value("pixstream_storage_written_keys_total") >= writes);
    assert!(value("pixstream_storage_written_bytes_total") > 3.0 * 100.0, "three message bodies");
    assert!(value("pixstream_storage_syncs_total") >= 1.0, "fsync is on");
    assert!(value("pixstream_storage_message_reads_total") >= 3.0, "the three handed out");
    assert!(samples.keys().any(|k| k.starts_with("pixstream_storage_sst_bytes")), "RocksDB sizes");
    assert!(value("pixstream_storage_stall_seconds_total") >= 0.0);
    let (free, capacity) = (value("pixstream_storage_free_bytes"), value("pixstream_storage_capacity_bytes"));
    assert!(free > 0.0 && free <= capacity, "disk space of the data dir: {free} of {capacity}");
    assert!(samples.keys().any(|k| k.starts_with("pixstream_build_info{version=")));

    // Confirming the batch empties the backlog.
    let next = pulled(node.get(&first.next, MULTI).await).await;
    assert_eq!(next.status, StatusCode::NO_CONTENT);
    // A message for an ISPB whose polls subscribed wakes it, and is counted.
    node.append(ISPB, &crate::harness::samples(ISPB, 1)).await;
    let woken = pulled(node.get(&next.next, MULTI).await).await;
    assert_eq!(woken.messages.len(), 1);
    let after = parse(&scrape(&node).await);
    assert!(after.get("pixstream_long_poll_wakes_total").is_some_and(|n| *n >= 1.0), "{after:#?}");
    let next = pulled(node.get(&woken.next, MULTI).await).await;
    assert_eq!(next.status, StatusCode::NO_CONTENT);
    let samples = parse(&scrape(&node).await);
    assert_eq!(samples.get(&format!(r#"pixstream_ispb_backlog{{ispb="{ISPB}"}}"#)), Some(&0.0));
    assert_eq!(
        samples.get(&format!(r#"pixstream_ispb_pulls_total{{ispb="{ISPB}"}}"#)),
        Some(&4.0),
        "200, 204, 200, 204"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_ispb_series_stay_bounded_with_ten_thousand_ispbs() {
    let node = TestNode::start(|_| {}).await;
    let ispbs: Vec<String> = (0..10_000).map(|n| format!("{n:08}")).collect();
    let url = |ispb: &str| format!("{}/internal/v1/out/{ispb}/msgs", node.api.internal);
    futures::stream::iter(&ispbs)
        .for_each_concurrent(32, |ispb| {
            let request = node.api.client.post(url(ispb)).header("content-type", "application/xml").body(message(ispb));
            async move {
                assert_eq!(request.send().await.expect("answered").status(), StatusCode::CREATED);
            }
        })
        .await;
    let text = scrape(&node).await;
    let samples = parse(&text);
    assert_eq!(samples.get("pixstream_tenants"), Some(&10_000.0));
    let per_ispb = samples.keys().filter(|k| k.starts_with("pixstream_ispb_backlog{")).count();
    assert_eq!(per_ispb, pixstream::metrics::MAX_ISPB_SERIES, "per-ISPB series are bounded");
    eprintln!("exposition with 10,000 ISPBs: {} bytes, {} series", text.len(), samples.len());
    assert!(text.len() < 256 << 10, "the exposition stays small: {} bytes", text.len());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_stream_is_counted_and_its_batch_shows_as_pending_redelivery() {
    let node = TestNode::start(|f| {
        f.limits.long_poll_wait_ms = 100;
        f.limits.stream_idle_timeout_ms = 1_000;
    })
    .await;
    node.append(ISPB, &samples(ISPB, 2)).await;
    assert_eq!(pulled(node.get(&start_path(ISPB), MULTI).await).await.messages.len(), 2);
    node.wait_until(std::time::Duration::from_secs(10), "the abandoned stream expires", |n| n.open_streams(ISPB) == 0)
        .await;
    // The sweeper counts the expiry once its command is applied, which is when the
    // stream is seen closed or a moment later.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let samples = loop {
        let samples = parse(&scrape(&node).await);
        if samples.get("pixstream_stream_expiries_total") == Some(&1.0) || tokio::time::Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(samples.get("pixstream_stream_expiries_total"), Some(&1.0));
    assert_eq!(samples.get("pixstream_redeliveries_total"), Some(&2.0), "the expired batch goes out again");
    assert_eq!(samples.get(&format!(r#"pixstream_ispb_redelivery_pending{{ispb="{ISPB}"}}"#)), Some(&2.0));
    node.stop().await;
}

/// The `pixstream_*` metric names a text mentions (a histogram's `_bucket`, `_sum`
/// and `_count` name the histogram).
fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (start, _) in text.match_indices("pixstream_") {
        let name: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let name = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name).to_owned();
        if !name.ends_with('_') {
            names.insert(name); // not a prefix such as `pixstream_ispb_*`
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_dashboard_and_docs_name_only_metrics_the_node_exposes() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = 100).await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    let exposed: std::collections::BTreeSet<String> = scrape(&node)
        .await
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect();
    // Series only a cluster has: a leader's view of its followers.
    let cluster_only = ["pixstream_shard_replication_lag_entries"];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> =
        ["ops/prometheus/alerts.yml", "ops/grafana/pixstream.json", "docs/observability.md"]
            .map(|f| root.join(f))
            .into();
    files.extend(
        std::fs::read_dir(root.join("docs/runbooks")).expect("docs/runbooks").map(|e| e.expect("entry").path()),
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let named = names_in(&text);
        let file = file.strip_prefix(root).unwrap_or(file).display();
        for name in named.iter().filter(|n| !cluster_only.contains(&n.as_str())) {
            assert!(exposed.contains(name), "{file} names {name}, which /metrics does not expose");
        }
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_forwarded_to_the_shard_leader_is_counted_there_under_its_route() {
    let cluster = TestCluster::start_with(&["sp1", "sp2", "rj1"], 1, |f| {
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let leader = cluster.leader_of(cluster.shard_of(ISPB)).expect("leader");
    let follower = cluster.running().into_iter().find(|id| *id != leader).expect("another node");
    let (entry, serving) = (cluster.api(follower), cluster.api(leader));
    entry.append_all(ISPB, &samples(ISPB, 2)).await;
    let first = entry.start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 2, "served through the entry node");
    assert_eq!(entry.follow(&first.next, MULTI).await.status, StatusCode::NO_CONTENT);

    let at_leader = parse(&scrape_api(&serving).await);
    let counted = |samples: &BTreeMap<String, f64>, series: &str| samples.get(series).copied().unwrap_or(0.0);
    for series in [
        r#"pixstream_requests_total{route="append",status="201"}"#,
        r#"pixstream_requests_total{route="stream_start",status="200"}"#,
        r#"pixstream_requests_total{route="stream_next",status="204"}"#,
    ] {
        assert_eq!(counted(&at_leader, series), 1.0, "the leader served it: {series}");
    }
    assert_eq!(
        counted(&at_leader, &format!(r#"pixstream_ispb_pulls_total{{ispb="{ISPB}"}}"#)),
        2.0,
        "both answered pulls counted for the ISPB where they were served"
    );
    let other = at_leader.keys().filter(|k| k.contains(r#"route="other""#)).cloned().collect::<Vec<_>>();
    assert!(other.is_empty(), "no forwarded request counted as another route: {other:?}");
    cluster.shutdown().await;
}
