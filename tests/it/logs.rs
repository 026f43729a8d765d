//! Logs and request ids (SPEC.md §7): every answer echoes the request id (the
//! client's `X-Request-Id`, or one the node made up); `--log-format json` writes one
//! JSON object per line, each event inside its request's span (request id, route,
//! ISPB, shard, stream, node); no message payload is ever logged.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

const SECRET: &str = "PAYLOAD-SENTINEL-0e5d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_span_and_never_the_payload() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server =
        ServeProcess::spawn(&tmp.path().join("data"), 1, &["--log-format", "json"], "debug,openraft=warn").await;
    let api = &server.api;

    let body = envelope(ISPB, &unique_biz(), "pacs.008.spi.1.14", &format!("<Secret>{SECRET}</Secret>"));
    let posted = api
        .client
        .post(format!("{}/internal/v1/out/{ISPB}/msgs", api.internal))
        .header("content-type", "application/xml")
        .header("x-request-id", "append-4711")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(posted.status(), StatusCode::CREATED);
    assert_eq!(header(posted.headers(), "x-request-id").as_deref(), Some("append-4711"), "the client's id is echoed");

    let pulled = api
        .client
        .get(format!("{}{}", api.public, start_path(ISPB)))
        .header("x-request-id", "pull-4712")
        .send()
        .await
        .expect("answered");
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(header(pulled.headers(), "x-request-id").as_deref(), Some("pull-4712"));
    assert!(pulled.text().await.expect("body").contains(SECRET), "the PSP gets the payload");

    let forged = api.get(&format!("/api/v1/out/{ISPB}/stream/AAAAAAAAAAAAAAAAAAAAAAAA"), MULTI).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let generated = header(forged.headers(), "x-request-id").expect("an id is made up when the client gives none");
    assert!(generated.starts_with("1-"), "node 1's own id: {generated}");

    let log = server.log_text();
    drop(server);
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    assert!(!log.contains(SECRET), "the payload is never logged");
    let span_of = |id: &str| {
        lines.iter().find(|line| line["span"]["request_id"] == id).unwrap_or_else(|| panic!("no event of {id}: {log}"))
    };
    let opened = lines
        .iter()
        .find(|line| line["span"]["request_id"] == "pull-4712" && line["fields"]["message"] == "stream opened")
        .unwrap_or_else(|| panic!("no 'stream opened' event of pull-4712: {log}"));
    assert_eq!(opened["span"]["ispb"], ISPB);
    assert_eq!(opened["span"]["route"], "stream_start");
    assert_eq!(opened["span"]["node"], 1);
    assert!(opened["span"]["shard"].is_u64(), "the ISPB's shard: {opened}");
    assert!(opened["span"]["stream"].is_u64(), "the stream, recorded once known: {opened}");
    assert_eq!(span_of("append-4711")["span"]["route"], "append");
    let refused = span_of(&generated);
    assert_eq!(refused["level"], "WARN", "an invalid cursor is a security event: {refused}");
}
