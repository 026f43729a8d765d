//! The internal listener's own TLS and authentication (SPEC.md §6): bearer tokens
//! (stored hashed) and client certificates, each with roles; every route demands
//! its role — no or unknown credentials are 401, a known caller without the role is
//! 403, both problem bodies, and nothing changes — while `/healthz` and `/readyz`
//! stay open.

use pixstream::config::ClientAuth;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

use crate::harness::{ISPB, Pki, TestNode, assert_problem, message};

const PRODUCER_TOKEN: &str = "pxs_producer_token_for_the_tests_0001";
const AUDITOR_TOKEN: &str = "pxs_auditor_token_for_the_tests_00002";

/// A node whose internal listener speaks TLS, asks for client certificates
/// (optional) and knows a producer token, an auditor token and an operator
/// certificate (CN `ops`).
async fn secured_internal(pki: &Pki) -> TestNode {
    pki.server("node");
    let credentials = pki.write_credentials(
        &[("upstream", PRODUCER_TOKEN, &["producer"]), ("audit", AUDITOR_TOKEN, &["auditor"])],
        &[("ops", &["operator"])],
    );
    let tls = pki.server_tls(ClientAuth::Optional, None);
    TestNode::start(move |file| {
        file.tls.internal = Some(tls);
        file.internal_auth.credentials_file = Some(credentials);
    })
    .await
}

fn append_url(node: &TestNode) -> String {
    format!("{}/internal/v1/out/{ISPB}/msgs", node.api.internal)
}

#[tokio::test]
async fn every_internal_route_demands_its_role() {
    let pki = Pki::new("test CA");
    let node = secured_internal(&pki).await;
    assert!(node.api.internal.starts_with("https://"), "the internal listener speaks TLS");
    let client = pki.https_client(None);
    let post = |token: Option<&str>| {
        let mut request = client.post(append_url(&node)).header("content-type", "application/xml").body(message(ISPB));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let missing = post(None).await.expect("answered");
    assert!(missing.headers().get(WWW_AUTHENTICATE).is_some(), "401 names the scheme");
    assert_problem(missing, 401, "unauthorized").await;
    assert_problem(post(Some("pxs_not_a_known_token")).await.expect("answered"), 401, "unauthorized").await;
    let problem = assert_problem(post(Some(AUDITOR_TOKEN)).await.expect("answered"), 403, "forbidden").await;
    assert!(problem.detail.contains("producer"), "the detail names the missing role: {}", problem.detail);
    assert_eq!(node.next_seq(ISPB), 1, "no refused request stored anything");

    assert_eq!(post(Some(PRODUCER_TOKEN)).await.expect("answered").status(), StatusCode::CREATED);
    assert_eq!(node.next_seq(ISPB), 2);

    let operator = pki.https_client(Some(&pki.client("ops")));
    let by_operator = operator
        .post(append_url(&node))
        .header("content-type", "application/xml")
        .body(message(ISPB))
        .send()
        .await
        .expect("answered");
    assert_problem(by_operator, 403, "forbidden").await;
    let members = format!("{}/internal/v1/cluster/members", node.api.internal);
    let admin_by_producer =
        client.post(&members).bearer_auth(PRODUCER_TOKEN).body("[]").send().await.expect("answered");
    assert_problem(admin_by_producer, 403, "forbidden").await;
    let admin = operator.post(&members).header("content-type", "application/json").body("not json").send().await;
    let status = admin.expect("answered").status();
    assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "the operator passes: {status}");

    let unknown_certificate = pki.https_client(Some(&pki.client("someone-else")));
    let refused = unknown_certificate.post(&members).body("[]").send().await.expect("answered");
    assert_problem(refused, 403, "forbidden").await;

    let audit = format!("{}{}", node.api.internal, wire::paths::audit_export_path(ISPB));
    assert_problem(client.get(&audit).bearer_auth(PRODUCER_TOKEN).send().await.expect("answered"), 403, "forbidden")
        .await;
    assert_problem(client.get(&audit).send().await.expect("answered"), 401, "unauthorized").await;
    let export = client.get(&audit).bearer_auth(AUDITOR_TOKEN).send().await.expect("answered");
    assert_eq!(export.status(), StatusCode::OK, "the auditor reads the audit chain");
    let text = export.text().await.expect("body");
    assert!(text.is_empty() || text.contains("\"kind\""), "{text}");

    // The operator's (refused) membership call is in the cluster's chain, which
    // only the auditor reads.
    let cluster_audit = format!("{}{}?unsealed=true", node.api.internal, wire::paths::CLUSTER_AUDIT_EXPORT);
    let as_producer = client.get(&cluster_audit).bearer_auth(PRODUCER_TOKEN).send().await.expect("answered");
    assert_problem(as_producer, 403, "forbidden").await;
    let chain = client.get(&cluster_audit).bearer_auth(AUDITOR_TOKEN).send().await.expect("answered");
    assert_eq!(chain.status(), StatusCode::OK);
    let chain = chain.text().await.expect("body");
    assert!(chain.contains("\"cluster.membership\"") && chain.contains("refused: "), "{chain}");

    // Tenant admin: changes need the operator; the auditor may only look.
    let tenant = format!("{}{}", node.api.internal, wire::paths::tenant_path(ISPB));
    let set = |token: &'static str| client.put(&tenant).bearer_auth(token).body("{\"max_streams\": 3}").send();
    assert_problem(set(PRODUCER_TOKEN).await.expect("answered"), 403, "forbidden").await;
    assert_problem(set(AUDITOR_TOKEN).await.expect("answered"), 403, "forbidden").await;
    let max_streams = node.tenant(ISPB).map(|t| t.settings.max_streams);
    assert_ne!(max_streams, Some(3), "a refused change changes nothing");
    let delete = client.delete(&tenant).bearer_auth(AUDITOR_TOKEN).send().await.expect("answered");
    assert_problem(delete, 403, "forbidden").await;
    let replays = format!("{}{}", node.api.internal, wire::paths::tenant_replays_path(ISPB));
    let replay = client.post(&replays).bearer_auth(AUDITOR_TOKEN).body("{\"from_seq\": 1}").send().await;
    assert_problem(replay.expect("answered"), 403, "forbidden").await;
    let look = client.get(&tenant).bearer_auth(AUDITOR_TOKEN).send().await.expect("answered");
    assert!(
        look.status() == StatusCode::OK || look.status() == StatusCode::NOT_FOUND,
        "the auditor looks: {}",
        look.status()
    );

    // Node and cluster admin: backup and leader transfer need the operator; the
    // auditor may read the cluster status.
    let out = node.data_dir().with_extension("backup-by-auditor");
    let backup = format!("{}{}", node.api.internal, wire::paths::NODE_BACKUP);
    let body = serde_json::json!({ "out": out }).to_string();
    let by_auditor = client.post(&backup).bearer_auth(AUDITOR_TOKEN).body(body.clone()).send().await;
    assert_problem(by_auditor.expect("answered"), 403, "forbidden").await;
    assert!(!out.exists(), "a refused backup writes nothing");
    let leader = format!("{}{}", node.api.internal, wire::paths::cluster_shard_leader_path(0));
    let by_auditor = client.post(&leader).bearer_auth(AUDITOR_TOKEN).body("{\"to\": 1}").send().await;
    assert_problem(by_auditor.expect("answered"), 403, "forbidden").await;
    let status = format!("{}{}", node.api.internal, wire::paths::CLUSTER_STATUS);
    let by_auditor = client.get(&status).bearer_auth(AUDITOR_TOKEN).send().await.expect("answered");
    assert_eq!(by_auditor.status(), StatusCode::OK, "the auditor reads the cluster status");
    let by_operator = operator.post(&backup).body(body).send().await.expect("answered");
    assert_eq!(by_operator.status(), StatusCode::CREATED, "the operator backs the node up");
    assert!(out.join("manifest.json").exists());

    for open in ["/healthz", "/readyz"] {
        let answer = client.get(format!("{}{open}", node.api.internal)).send().await.expect("answered");
        assert_eq!(answer.status(), StatusCode::OK, "{open} needs no credentials");
    }
    node.stop().await;
}

#[tokio::test]
async fn a_removed_token_stops_working_after_reload() {
    let pki = Pki::new("test CA");
    let node = secured_internal(&pki).await;
    let client = pki.https_client(None);
    let post = || {
        client
            .post(append_url(&node))
            .bearer_auth(PRODUCER_TOKEN)
            .header("content-type", "application/xml")
            .body(message(ISPB))
            .send()
    };
    assert_eq!(post().await.expect("answered").status(), StatusCode::CREATED);
    pki.write_credentials(&[("audit", AUDITOR_TOKEN, &["auditor"])], &[]);
    node.reload().expect("the new credentials load");
    assert_problem(post().await.expect("answered"), 401, "unauthorized").await;
    node.stop().await;
}

#[tokio::test]
async fn a_single_secured_node_without_peer_tls_takes_no_forwarded_requests() {
    let pki = Pki::new("test CA");
    let node = secured_internal(&pki).await;
    let peer = node.peer_addr();
    let bypass = reqwest::Client::new()
        .post(format!("http://{peer}/peer/v1/forward/internal/v1/out/{ISPB}/msgs"))
        .header("content-type", "application/xml")
        .body(message(ISPB))
        .send()
        .await;
    let answer = bypass.expect("answered");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN, "no way around the credentials through {peer}");
    assert_eq!(node.next_seq(ISPB), 1, "nothing was stored");
    node.stop().await;
}

#[tokio::test]
async fn a_tls_private_key_others_can_read_refuses_start_up() {
    let pki = Pki::new("test CA");
    pki.server("node");
    std::fs::set_permissions(pki.path("node.key"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let dir = tempfile::tempdir().expect("temp dir");
    let any = "127.0.0.1:0".parse().expect("addr");
    let mut file = pixstream::config::ConfigFile::embedded(dir.path(), any, any);
    file.tls.public = Some(pki.server_tls(ClientAuth::None, None));
    let config = file.validate(1, pixstream::config::StartMode::Bootstrap).expect("valid");
    let error =
        pixstream::server::start(config, tokio_util::sync::CancellationToken::new()).await.err().expect("refused");
    assert!(error.to_string().contains("node.key") && error.to_string().contains("chmod 600"), "{error}");
}
