//! The audit chain over HTTP and the CLI (SPEC.md §6): stream activity, appends and
//! refused tokens leave records; `pixstream audit export` seals the chain and writes
//! it; `pixstream audit verify` passes it with the node's public key, and fails —
//! naming the record — once a line of the export is changed or removed.

use std::path::Path;

use reqwest::StatusCode;
use storage::audit::{AuditAction, AuditEntry};

use pixstream::config::PeerTlsSection;

use crate::harness::{ISPB, MULTI, Pki, TestCluster, TestNode, message, messages};

/// Runs the `pixstream` binary (asynchronously: the node under test shares this
/// test's runtime).
async fn cli(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pixstream"))
        .args(args)
        .output()
        .await
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn entries(path: &Path) -> Vec<AuditEntry> {
    let text = std::fs::read_to_string(path).expect("export written");
    text.lines().map(|l| serde_json::from_str(l).expect("an audit line")).collect()
}

#[tokio::test]
async fn activity_is_exported_sealed_and_verified_and_tampering_fails_verification() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 3)).await;
    let first = node.start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 3);
    let bad = node.get(&format!("/api/v1/out/{ISPB}/stream/not-a-token"), MULTI).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(node.delete(&first.next).await.status(), StatusCode::OK);

    let dir = tempfile::tempdir().expect("dir");
    let export = dir.path().join("audit.jsonl");
    let keys = node.config.audit.key_dir.to_str().expect("utf-8").to_owned();
    // The invalid-token event is committed in the background: wait for it.
    let mut records = Vec::new();
    for _ in 0..50 {
        let (ok, text) = cli(&[
            "audit",
            "export",
            "--ispb",
            ISPB,
            "--url",
            &node.internal,
            "--out",
            export.to_str().expect("utf-8"),
        ])
        .await;
        assert!(ok, "{text}");
        records = entries(&export);
        if records.iter().any(|e| matches!(e, AuditEntry::Record(r) if r.action == AuditAction::InvalidToken)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let actions: Vec<AuditAction> = records
        .iter()
        .filter_map(|e| match e {
            AuditEntry::Record(r) => Some(r.action),
            AuditEntry::Checkpoint(_) => None,
        })
        .collect();
    for expected in [AuditAction::Append, AuditAction::StreamOpen, AuditAction::InvalidToken, AuditAction::StreamClose]
    {
        assert!(actions.contains(&expected), "{expected:?} recorded: {actions:?}");
    }
    assert!(
        matches!(records.last(), Some(AuditEntry::Checkpoint(_))),
        "the export ends on the checkpoint it asked for"
    );

    let (ok, text) = cli(&["audit", "verify", export.to_str().expect("utf-8"), "--keys", &keys]).await;
    assert!(ok, "{text}");
    assert!(text.contains("every link holds"), "{text}");

    let text = std::fs::read_to_string(&export).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let changed = lines[1].replacen("\"ok\"", "\"refused\"", 1);
    assert_ne!(changed, lines[1], "the second record has an outcome to change");
    let tampered = dir.path().join("tampered.jsonl");
    let mut altered = lines.clone();
    altered[1] = changed;
    std::fs::write(&tampered, altered.join("\n")).expect("write");
    let (ok, text) = cli(&["audit", "verify", tampered.to_str().expect("utf-8"), "--keys", &keys, "--json"]).await;
    assert!(!ok, "a changed record fails verification");
    let report: serde_json::Value =
        serde_json::from_str(text.lines().take_while(|l| !l.starts_with("pixstream:")).collect::<String>().as_str())
            .expect("JSON report");
    assert_eq!(report["findings"][0]["finding"], "altered_record", "{report}");
    assert_eq!(report["findings"][0]["seq"], 2);

    lines.remove(2);
    std::fs::write(&tampered, lines.join("\n")).expect("write");
    let (ok, text) = cli(&["audit", "verify", tampered.to_str().expect("utf-8"), "--keys", &keys]).await;
    assert!(!ok && text.contains("record 4 after record 2: broken link"), "{text}");
    node.stop().await;
}

#[tokio::test]
async fn the_audit_export_checks_its_range_and_tenant() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 1)).await;
    let url = format!("{}{}", node.internal, wire::paths::audit_export_path(ISPB));
    let answer = node.client.get(&url).send().await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK, "open on the embedded default (loopback, no credentials)");
    let bad_range = node.client.get(format!("{url}?from_ms=9&to_ms=1")).send().await.expect("answer");
    assert_eq!(bad_range.status(), StatusCode::BAD_REQUEST);
    let unknown = node
        .client
        .get(format!("{}{}", node.internal, wire::paths::audit_export_path("00000001")))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    node.stop().await;
}

/// A refusal seen by a node that does not lead the ISPB's shard is relayed over peer
/// TLS and lands in the leader's chain, with the caller the entry node saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_on_a_follower_is_recorded_in_the_chain_through_the_leader() {
    const PRODUCER: &str = "pxs_producer_token_for_the_audit_test_1";
    let pki = Pki::new("cluster CA");
    for id in 1..=3 {
        pki.server(&format!("node-{id}"));
    }
    let credentials = pki.write_credentials(&[("upstream", PRODUCER, &["producer"])], &[]);
    let (dir, ca_file) = (pki.dir.path().to_path_buf(), pki.ca_file());
    let cluster = TestCluster::start_with(&["sp", "rj", "df"], 1, move |file| {
        file.tls.peer = Some(PeerTlsSection {
            cert_file: dir.join("node-{node_id}.pem"),
            key_file: dir.join("node-{node_id}.key"),
            ca_file: ca_file.clone(),
        });
        file.internal_auth.credentials_file = Some(credentials.clone());
    })
    .await;
    let leader = cluster.leader_of(cluster.shard_of(ISPB)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let post = |id: u64, token: Option<&str>| {
        let api = cluster.api(id);
        let mut request = api
            .client
            .post(format!("{}{}", api.internal, wire::paths::append_path(ISPB)))
            .header("content-type", "application/xml")
            .body(message(ISPB));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(post(leader, Some(PRODUCER)).await.expect("answer").status(), StatusCode::CREATED);
    assert_eq!(post(follower, None).await.expect("answer").status(), StatusCode::UNAUTHORIZED);

    let app = cluster.member(leader).app();
    let mut found = None;
    for _ in 0..100 {
        let head = app.shards.read(&storage::Ispb::parse(ISPB).expect("valid"), |m| {
            m.tenant(&storage::Ispb::parse(ISPB).expect("valid")).map(|t| t.audit.clone())
        });
        if let Some(Some(head)) = head {
            let range = storage::audit::ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: true };
            let entries =
                app.store.audit_export(&storage::Ispb::parse(ISPB).expect("valid"), &head, range).expect("export");
            found = entries.into_iter().find_map(|e| match e {
                AuditEntry::Record(r) if r.action == AuditAction::Unauthenticated => Some(r),
                _ => None,
            });
            if found.is_some() {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let record = found.expect("the follower's 401 is in the leader's chain");
    assert_eq!(record.actor, "anonymous");
    assert!(record.outcome.contains("bearer token"), "{}", record.outcome);
    cluster.shutdown().await;
}

/// SPEC.md §4 "every admin action is audited": membership calls (changes and refused
/// bodies) and access events of ISPBs that have no tenant land in the cluster's own
/// chain, which `pixstream audit export --cluster` writes and `verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_calls_and_refusals_for_ispbs_without_a_tenant_land_in_the_cluster_chain() {
    use pixstream::api::cluster_admin::{MEMBERS_PATH, MembersRequest};
    let node = TestNode::start(|_| {}).await;
    let members = MembersRequest { nodes: node.app().shards.cluster().nodes.clone(), replication_factor: None };
    let url = format!("{}{MEMBERS_PATH}", node.internal);
    let body = serde_json::to_vec(&members).expect("json");
    let same =
        node.client.post(&url).header("content-type", "application/json").body(body).send().await.expect("answered");
    assert_eq!(same.status(), StatusCode::OK);
    let refused = node.client.post(&url).body("{\"nodes\": 7}").send().await.expect("answered");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let unknown = node.get("/api/v1/out/11111111/stream/not-a-token", MULTI).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    let dir = tempfile::tempdir().expect("dir");
    let export = dir.path().join("cluster.jsonl");
    let export_arg = export.to_str().expect("utf-8");
    // The access event is committed in the background: wait for it.
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        let (ok, text) = cli(&["audit", "export", "--cluster", "--url", &node.internal, "--out", export_arg]).await;
        assert!(ok, "{text}");
        outcomes = entries(&export)
            .into_iter()
            .filter_map(|e| match e {
                AuditEntry::Record(r) => Some((r.chain, r.action, r.outcome)),
                AuditEntry::Checkpoint(_) => None,
            })
            .collect::<Vec<_>>();
        if outcomes.iter().any(|(_, action, _)| *action == AuditAction::InvalidToken) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(outcomes.iter().all(|(chain, ..)| chain.is_cluster()), "{outcomes:?}");
    let membership: Vec<&String> =
        outcomes.iter().filter(|(_, a, _)| *a == AuditAction::ClusterMembership).map(|(.., o)| o).collect();
    assert_eq!(membership.len(), 2, "{outcomes:?}");
    assert!(membership[0].starts_with("nodes [1]: 200"), "{membership:?}");
    assert!(membership[1].starts_with("refused: "), "{membership:?}");
    assert!(
        outcomes.iter().any(|(_, a, o)| *a == AuditAction::InvalidToken && o.starts_with("ISPB 11111111 (no tenant)")),
        "{outcomes:?}"
    );
    assert!(node.tenant("11111111").is_none(), "a refusal creates no tenant");
    let keys = node.config.audit.key_dir.to_str().expect("utf-8").to_owned();
    let (ok, text) = cli(&["audit", "verify", export_arg, "--keys", &keys]).await;
    assert!(ok, "the cluster chain verifies: {text}");
    node.stop().await;
}
