//! Tenant administration (SPEC.md §4): `PUT /internal/v1/tenants/{ispb}` creates a
//! tenant or changes its settings through any node (the shard leader applies it),
//! the change takes effect at once (slots, rate limit, pause), `GET` shows it on
//! every node, `pixstream admin tenants` drives the same calls; bad calls get a
//! clear error and change nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

async fn put(api: &Api, ispb: &str, body: &Value) -> reqwest::Response {
    api.admin(Method::PUT, &wire::paths::tenant_path(ispb), &body.to_string()).await
}

async fn show(api: &Api, ispb: &str) -> (StatusCode, Value) {
    let answer = api.client.get(format!("{}{}", api.internal, wire::paths::tenant_path(ispb))).send().await;
    let answer = answer.expect("answered");
    let status = answer.status();
    (status, serde_json::from_str(&answer.text().await.expect("body")).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_is_created_changed_paused_and_shown_through_any_node() {
    let cluster = TestCluster::start_with(&["sp1", "sp2", "rj1"], 2, |f| {
        f.tenants.auto_create = false;
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let leader = cluster.leader_of(cluster.shard_of(ISPB)).expect("leader");
    let follower = cluster.running().into_iter().find(|id| *id != leader).expect("another node");
    let (via, other) = (cluster.api(follower), cluster.api(leader));
    assert_eq!(via.post_xml(ISPB, message(ISPB), None).await.status(), StatusCode::NOT_FOUND, "no tenant yet");

    let created = put(&via, ISPB, &json!({"max_streams": 2, "rate_burst": 50})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = serde_json::from_str(&created.text().await.expect("body")).expect("json");
    assert_eq!(created["settings"]["max_streams"], 2);
    assert_eq!(created["settings"]["rate_burst"], 50);
    assert_eq!(created["settings"]["retention_days"], 7, "the rest from the [tenants] defaults");
    let minute = put(&via, ISPB, &json!({"retention_secs": 60})).await;
    let minute: Value = serde_json::from_str(&minute.text().await.expect("body")).expect("json");
    assert_eq!(
        (minute["settings"]["retention_secs"].as_u64(), minute["settings"]["retention_days"].as_u64()),
        (Some(60), Some(0))
    );
    via.append(ISPB, &messages(ISPB, 3)).await;
    let first = via.start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 3);
    let (status, shown) = show(&other, ISPB).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((shown["backlog"].as_u64(), shown["streams"].as_array().map(Vec::len)), (Some(3), Some(1)));
    assert_eq!(shown["streams"][0]["outstanding"], 3);

    // Two slots: a second stream opens, a third is refused.
    assert!(via.get(&start_path(ISPB), MULTI).await.status().is_success());
    assert_problem(via.get(&start_path(ISPB), MULTI).await, 429, "tooManyStreams").await;

    // A new rate limit shows in the next answer's RateLimit-Limit.
    let changed = put(&via, ISPB, &json!({"rate_per_sec": 7, "rate_burst": 9})).await;
    assert_eq!(changed.status(), StatusCode::OK, "an existing tenant is changed");
    let answer = via.get(&first.next, MULTI).await;
    assert_eq!(header(answer.headers(), "ratelimit-limit").as_deref(), Some("9"));

    // Paused: pulls get 503 with Retry-After, producers still append; resumed: served.
    assert_eq!(put(&via, ISPB, &json!({"paused": true})).await.status(), StatusCode::OK);
    let paused = via.get(&start_path(ISPB), MULTI).await;
    assert!(paused.headers().contains_key("retry-after"));
    assert_problem(paused, 503, "unavailable").await;
    via.append(ISPB, &messages(ISPB, 1)).await;
    assert_eq!(put(&via, ISPB, &json!({"paused": false})).await.status(), StatusCode::OK);
    let (_, shown) = show(&via, ISPB).await;
    assert_eq!(shown["settings"]["paused"], false);
    assert_eq!(shown["backlog"], 1, "the first three were confirmed by the next pull; one appended while paused");

    let list = via.client.get(format!("{}{}", via.internal, wire::paths::TENANTS)).send().await.expect("answered");
    let list: Value = serde_json::from_str(&list.text().await.expect("body")).expect("json");
    assert_eq!(list["tenants"][0]["ispb"], ISPB);
    assert_eq!(list["unhosted_shards"], json!([]), "every node hosts every shard with three replicas");
    cluster.shutdown().await;
}

#[tokio::test]
async fn bad_tenant_calls_get_a_clear_error_and_change_nothing() {
    let node = TestNode::start(|f| f.tenants.auto_create = false).await;
    for (body, fragment) in [
        (json!({"max_streams": 7}), "max_streams must be 1 to 6"),
        (json!({"max_backlog": 0}), "max_backlog"),
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"retention_secs": 59}), "retention_secs must be 60"),
        (json!({"retention_secs": 600, "retention_days": 1}), "not both"),
        (json!({"rate_per_sec": 0}), "rate_per_sec"),
        (json!({"max_stream": 3}), "unknown field"),
        (json!({"paused": "yes"}), "expected a boolean"),
        (json!({"legal_hold": {"on": true}}), "a legal hold needs a reason"),
        (json!({"legal_hold": {"on": true, "reason": "  "}}), "a legal hold needs a reason"),
    ] {
        let problem = assert_problem(put(&node.api, ISPB, &body).await, 400, "invalidBody").await;
        assert!(problem.detail.contains(fragment), "{body}: {}", problem.detail);
    }
    assert_problem(put(&node.api, "3207498x", &json!({})).await, 400, "invalidIspb").await;
    let (status, _) = show(&node.api, ISPB).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no refused call created the tenant");
    assert!(node.tenant(ISPB).is_none());
    node.stop().await;
}

#[tokio::test]
async fn pixstream_admin_tenants_sets_shows_pauses_and_lists() {
    let node = TestNode::start(|_| {}).await;
    let url = node.internal.clone();
    let (ok, text) = run_cli(&["admin", "tenants", "set", "--ispb", ISPB, "--max-streams", "3", "--url", &url]).await;
    assert!(ok && text.contains("streams 0/3"), "{text}");
    node.append(ISPB, &messages(ISPB, 2)).await;
    let (ok, text) = run_cli(&["admin", "tenants", "pause", "--ispb", ISPB, "--url", &url]).await;
    assert!(ok && text.contains("(paused)") && text.contains("backlog 2"), "{text}");
    let (ok, text) = run_cli(&["admin", "tenants", "hold", "--ispb", ISPB, "--reason", "case 77", "--url", &url]).await;
    assert!(ok && text.contains("legal hold: case 77"), "{text}");
    assert_eq!(node.tenant(ISPB).expect("tenant").settings.legal_hold.as_deref(), Some("case 77"));
    let (ok, text) = run_cli(&["admin", "tenants", "release", "--ispb", ISPB, "--url", &url]).await;
    assert!(ok && !text.contains("legal hold"), "{text}");
    let (ok, text) = run_cli(&["admin", "tenants", "list", "--json", "--url", &url]).await;
    let list: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(ok && list["tenants"][0]["paused"] == true, "{text}");
    let (ok, text) = run_cli(&["admin", "tenants", "show", "--ispb", "11111111", "--url", &url]).await;
    assert!(!ok && text.contains("404"), "an unknown tenant is an error: {text}");
    let (ok, text) = run_cli(&["admin", "tenants", "delete", "--ispb", ISPB, "--url", &url]).await;
    assert!(!ok && text.contains("2 unconfirmed messages"), "a tenant with messages is not deleted: {text}");
    let forced = ["admin", "tenants", "delete", "--ispb", ISPB, "--force", "--reason", "left the SPI", "--url", &url];
    let (ok, text) = run_cli(&forced).await;
    assert!(ok && text.contains("2 unconfirmed messages discarded"), "{text}");
    assert!(node.tenant(ISPB).is_none());
    node.stop().await;
}

#[tokio::test]
async fn a_force_closed_stream_gives_its_batch_to_the_next_reader() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    node.append(ISPB, &messages(ISPB, 3)).await;
    let held = node.start_stream(ISPB, MULTI).await;
    assert_eq!(held.messages.len(), 3);
    let (_, shown) = show(&node.api, ISPB).await;
    let stream = shown["streams"][0]["id"].as_u64().expect("the open stream");
    let url = |stream: u64| format!("{}{}", node.internal, wire::paths::tenant_stream_path(ISPB, stream));

    let closed = node.client.delete(url(stream)).send().await.expect("answered");
    assert_eq!(closed.status(), StatusCode::OK);
    let closed: Value = serde_json::from_str(&closed.text().await.expect("body")).expect("json");
    assert_eq!((closed["redelivered"].as_u64(), closed["open_streams"].as_u64()), (Some(3), Some(0)));
    assert_problem(node.get(&held.next, MULTI).await, 410, "streamClosed").await;
    let again = node.start_stream(ISPB, MULTI).await;
    assert_eq!(again.messages, held.messages, "the next reader gets the returned batch");
    assert_problem(node.client.delete(url(stream)).send().await.expect("answered"), 404, "notFound").await;
    node.stop().await;
}

async fn move_cursor(api: &Api, body: &Value) -> reqwest::Response {
    api.admin(Method::POST, &wire::paths::tenant_cursor_path(ISPB), &body.to_string()).await
}

#[tokio::test]
async fn the_cursor_moves_back_to_redeliver_and_forward_only_with_a_reason() {
    let node = TestNode::start(|f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS).await;
    node.append(ISPB, &messages(ISPB, 6)).await;
    let (all, _, last) = node.drain(ISPB, MULTI).await;
    assert_eq!((all.len(), node.watermark(ISPB)), (6, 7), "everything delivered and confirmed");

    // Back to seq 3: 3..=6 go out again, the open stream is closed.
    let moved = move_cursor(&node.api, &json!({"to_seq": 3, "reason": "PSP lost its database"})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = serde_json::from_str(&moved.text().await.expect("body")).expect("json");
    assert_eq!((moved["from_seq"].as_u64(), moved["closed_streams"].as_u64()), (Some(7), Some(1)));
    assert_problem(node.get(&last.next, MULTI).await, 410, "streamClosed").await;
    let again = node.start_stream(ISPB, MULTI).await;
    assert_eq!(again.seqs(), vec![3, 4, 5, 6]);

    // Forward past the rest: only with a reason; then the backlog is empty.
    let refused = assert_problem(move_cursor(&node.api, &json!({"to_seq": 7})).await, 400, "invalidBody").await;
    assert!(refused.detail.contains("reason"), "{}", refused.detail);
    assert_eq!(node.watermark(ISPB), 3, "a refused move changes nothing");
    let skipped = move_cursor(&node.api, &json!({"to_seq": 7, "reason": "replayed out of band"})).await;
    assert_eq!(skipped.status(), StatusCode::OK);
    assert_eq!((node.watermark(ISPB), node.tenant(ISPB).expect("tenant").backlog()), (7, 0));

    for (body, fragment) in [
        (json!({"to_seq": 9, "reason": "x"}), "to 7 (the next seq)"),
        (json!({"to_seq": 0}), "from 1"),
        (json!({"to": 3}), "unknown field"),
    ] {
        let problem = assert_problem(move_cursor(&node.api, &body).await, 400, "invalidBody").await;
        assert!(problem.detail.contains(fragment), "{body}: {}", problem.detail);
    }
    assert_eq!(node.watermark(ISPB), 7);
    node.stop().await;
}

async fn delete(api: &Api, ispb: &str, body: &str) -> reqwest::Response {
    api.admin(Method::DELETE, &wire::paths::tenant_path(ispb), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_is_deleted_only_empty_or_forced_with_a_reason_and_its_audit_chain_and_seqs_go_on() {
    let cluster = TestCluster::start_with(&["sp1", "sp2", "rj1"], 2, |f| {
        f.tenants.auto_create = false;
        f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS;
    })
    .await;
    let via = cluster.api(cluster.follower_of(cluster.shard_of(ISPB)));
    assert_eq!(put(&via, ISPB, &json!({})).await.status(), StatusCode::CREATED);
    via.append(ISPB, &messages(ISPB, 3)).await;
    let held = via.start_stream(ISPB, MULTI).await;
    assert_eq!(held.messages.len(), 3);

    // Refused, with the reason, changing nothing.
    let refused = assert_problem(delete(&via, ISPB, "").await, 400, "invalidBody").await;
    assert!(refused.detail.contains("3 unconfirmed messages and 1 open streams"), "{}", refused.detail);
    let refused = assert_problem(delete(&via, ISPB, r#"{"force": true}"#).await, 400, "invalidBody").await;
    assert!(refused.detail.contains("reason"), "{}", refused.detail);
    assert_eq!(
        put(&via, ISPB, &json!({"legal_hold": {"on": true, "reason": "case 9"}})).await.status(),
        StatusCode::OK
    );
    let refused = delete(&via, ISPB, r#"{"force": true, "reason": "closing"}"#).await;
    assert!(assert_problem(refused, 400, "invalidBody").await.detail.contains("legal hold"));
    assert_eq!(put(&via, ISPB, &json!({"legal_hold": {"on": false}})).await.status(), StatusCode::OK);
    assert_problem(delete(&via, "11111111", "").await, 404, "tenantNotFound").await;
    assert_problem(delete(&via, ISPB, "{not json").await, 400, "invalidBody").await;
    assert_eq!(show(&via, ISPB).await.1["backlog"], 3, "nothing changed");

    let deleted = delete(&via, ISPB, r#"{"force": true, "reason": "participant left the SPI"}"#).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = serde_json::from_str(&deleted.text().await.expect("body")).expect("json");
    assert_eq!((deleted["discarded"].as_u64(), deleted["closed_streams"].as_u64()), (Some(3), Some(1)));
    assert_eq!(show(&via, ISPB).await.0, StatusCode::NOT_FOUND);
    assert_problem(via.get(&held.next, MULTI).await, 410, "streamClosed").await;
    assert_eq!(via.post_xml(ISPB, message(ISPB), None).await.status(), StatusCode::NOT_FOUND, "no tenant any more");
    let list = via.client.get(format!("{}{}", via.internal, wire::paths::TENANTS)).send().await.expect("answered");
    assert!(!list.text().await.expect("body").contains(ISPB), "a deleted tenant is not listed");

    // Its audit chain stays and records the deletion with its reason.
    let export = format!("{}{}?unsealed=true", via.internal, wire::paths::audit_export_path(ISPB));
    let chain = via.client.get(export).send().await.expect("answered").text().await.expect("body");
    assert!(chain.contains("\"tenant.delete\"") && chain.contains("participant left the SPI"), "{chain}");

    // Created again, it continues its seqs; every replica agrees.
    assert_eq!(put(&via, ISPB, &json!({})).await.status(), StatusCode::CREATED);
    let again = via.append(ISPB, &messages(ISPB, 1)).await;
    assert_eq!(again[0].seq, 4, "seqs are never reused");
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!((state.backlog(), state.open_streams()), (1, 0));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_is_force_closed_and_the_cursor_moved_through_a_follower() {
    let cluster =
        TestCluster::start_with(&["sp1", "sp2", "rj1"], 2, |f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS)
            .await;
    let via = cluster.api(cluster.follower_of(cluster.shard_of(ISPB)));
    retry_until_created(&via, ISPB, &messages(ISPB, 4)).await;
    let held = via.start_stream(ISPB, MULTI).await;
    let (_, shown) = show(&via, ISPB).await;
    let stream = shown["streams"][0]["id"].as_u64().expect("the open stream");
    let url = format!("{}{}", via.internal, wire::paths::tenant_stream_path(ISPB, stream));
    let closed = via.client.delete(url).send().await.expect("answered");
    assert_eq!(closed.status(), StatusCode::OK);
    assert_problem(via.get(&held.next, MULTI).await, 410, "streamClosed").await;

    let skipped = move_cursor(&via, &json!({"to_seq": 3, "reason": "delivered out of band"})).await;
    assert_eq!(skipped.status(), StatusCode::OK);
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!((state.watermark, state.backlog()), (3, 2), "every replica skipped seqs 1 and 2");
    let again = via.start_stream(ISPB, MULTI).await;
    assert_eq!(again.seqs(), vec![3, 4]);
    cluster.shutdown().await;
}
