//! HTTPS on the public listener (SPEC.md §6): the pull protocol over mutual TLS, the
//! client certificate → ISPB mapping checked per request (a revoked mapping takes
//! effect on an open keep-alive connection), `client_auth = optional` and
//! `required`, and reload of certificates and mapping without dropping connections
//! (a bad new file keeps the old configuration).

use pixstream::certs::IssuedCertificate;
use pixstream::config::{ClientAuth, ConfigFile, ServerTlsSection};
use reqwest::StatusCode;

use crate::harness::{Api, ISPB, MULTI, OTHER_ISPB, Pki, TestNode, assert_problem, pulled, samples, start_path};

/// A node whose public listener speaks TLS with `client_auth`, its mapping letting
/// `psp` read `ISPB` only; the internal listener stays plain (loopback).
async fn secure_node(pki: &Pki, client_auth: ClientAuth, psp: &IssuedCertificate) -> TestNode {
    pki.server("node");
    let clients = pki.write_clients(&[("psp-a", psp, &[ISPB])]);
    let (cert, key, ca) = (pki.path("node.pem"), pki.path("node.key"), pki.ca_file());
    TestNode::start(move |file: &mut ConfigFile| {
        file.tls.public = Some(ServerTlsSection {
            cert_file: cert,
            key_file: key,
            client_auth,
            client_ca_file: Some(ca),
            clients_file: Some(clients),
        });
    })
    .await
}

/// The node's API as a PSP holding `identity` sees it.
fn as_psp(node: &TestNode, pki: &Pki, identity: Option<&IssuedCertificate>) -> Api {
    Api { client: pki.https_client(identity), ..node.api.clone() }
}

#[tokio::test]
async fn the_pull_protocol_runs_over_mutual_tls_and_other_ispbs_are_forbidden() {
    let pki = Pki::new("test CA");
    let psp = pki.client("psp-a");
    let node = secure_node(&pki, ClientAuth::Required, &psp).await;
    assert!(node.api.public.starts_with("https://"), "the public listener speaks TLS");
    let produced = node.append(ISPB, &samples(ISPB, 3)).await;
    node.append(OTHER_ISPB, &samples(OTHER_ISPB, 1)).await;

    let api = as_psp(&node, &pki, Some(&psp));
    let first = api.start_stream(ISPB, MULTI).await;
    assert_eq!(first.seqs(), produced.iter().map(|a| a.seq).collect::<Vec<_>>(), "every message, in order");
    let next = api.follow(&first.next, MULTI).await;
    assert_eq!(next.status, StatusCode::NO_CONTENT, "the batch was confirmed");
    assert_eq!(api.delete(&next.next).await.status(), StatusCode::OK);

    let forbidden = api.get(&start_path(OTHER_ISPB), MULTI).await;
    let problem = assert_problem(forbidden, 403, "forbidden").await;
    assert!(problem.detail.contains(OTHER_ISPB), "the detail names the ISPB: {}", problem.detail);
    assert_eq!(node.open_streams(OTHER_ISPB), 0, "a forbidden request opens nothing");

    let anonymous = as_psp(&node, &pki, None);
    let refused = anonymous.client.get(format!("{}{}", node.api.public, start_path(ISPB))).send().await;
    assert!(refused.is_err(), "client_auth = required: no handshake without a certificate");
    let stranger = Pki::new("another CA");
    let foreign = as_psp(&node, &pki, Some(&stranger.client("psp-a")));
    let refused = foreign.client.get(format!("{}{}", node.api.public, start_path(ISPB))).send().await;
    assert!(refused.is_err(), "a certificate of another CA is refused at the handshake");
    node.stop().await;
}

#[tokio::test]
async fn a_revoked_mapping_takes_effect_on_an_open_keep_alive_connection() {
    let pki = Pki::new("test CA");
    let psp = pki.client("psp-a");
    let node = secure_node(&pki, ClientAuth::Required, &psp).await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    let api = as_psp(&node, &pki, Some(&psp));
    let first = api.start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 1);

    pki.write_clients(&[("psp-a", &psp, &[OTHER_ISPB])]);
    node.reload().expect("the new mapping loads");
    // The same client: its pooled keep-alive connection carries the next request.
    let revoked = api.get(&first.next, MULTI).await;
    assert_problem(revoked, 403, "forbidden").await;
    assert_eq!(node.watermark(ISPB), 1, "the refused request confirmed nothing");
    node.stop().await;
}

#[tokio::test]
async fn with_optional_client_auth_a_request_without_certificate_gets_a_readable_403() {
    let pki = Pki::new("test CA");
    let psp = pki.client("psp-a");
    let node = secure_node(&pki, ClientAuth::Optional, &psp).await;
    node.append(ISPB, &samples(ISPB, 1)).await;
    let anonymous = as_psp(&node, &pki, None);
    let problem = assert_problem(anonymous.get(&start_path(ISPB), MULTI).await, 403, "forbidden").await;
    assert!(problem.detail.contains("certificate"), "{}", problem.detail);
    let api = as_psp(&node, &pki, Some(&psp));
    assert_eq!(api.start_stream(ISPB, MULTI).await.messages.len(), 1, "a mapped certificate reads");
    node.stop().await;
}

#[tokio::test]
async fn reload_swaps_the_server_certificate_for_new_connections_and_keeps_open_ones() {
    let pki = Pki::new("test CA");
    let psp = pki.client("psp-a");
    let node = secure_node(&pki, ClientAuth::Required, &psp).await;
    let api = as_psp(&node, &pki, Some(&psp));
    assert_eq!(api.start_stream(ISPB, MULTI).await.status, StatusCode::NO_CONTENT);

    // A bad certificate file: the reload fails and the node serves on as before.
    std::fs::write(pki.path("node.pem"), "not a certificate").expect("write");
    let error = node.reload().expect_err("a broken certificate file is refused");
    assert!(error.to_string().contains("node.pem"), "the error names the file: {error}");
    let fresh = as_psp(&node, &pki, Some(&psp));
    assert_eq!(fresh.start_stream(ISPB, MULTI).await.status, StatusCode::NO_CONTENT, "old certificate still served");

    // A certificate of a new CA (which also issues the client certificates now).
    let renewed = Pki::new("renewed CA");
    let certificate = renewed.ca.issue_server("node", &["127.0.0.1".to_owned()]).expect("certificate");
    certificate.write(pki.dir.path(), "node").expect("write");
    std::fs::copy(renewed.ca_file(), pki.ca_file()).expect("replace the client CA");
    node.reload().expect("the renewed files load");
    let status = api.get(&start_path(ISPB), MULTI).await.status();
    assert_ne!(status, StatusCode::FORBIDDEN, "the open connection keeps working");
    let old_trust = as_psp(&node, &pki, Some(&psp));
    assert!(
        old_trust.client.get(format!("{}{}", node.api.public, start_path(ISPB))).send().await.is_err(),
        "a new connection gets the new certificate, which the old CA does not vouch for"
    );
    let renewed_psp = renewed.client("psp-a");
    pki.write_clients(&[("psp-a", &renewed_psp, &[ISPB])]);
    node.reload().expect("the new mapping loads");
    let api = as_psp(&node, &renewed, Some(&renewed_psp));
    assert!(pulled(api.get(&start_path(ISPB), MULTI).await).await.status.is_success());
    node.stop().await;
}

#[tokio::test]
async fn a_bad_mapping_file_is_refused_at_reload_and_the_old_mapping_stays() {
    let pki = Pki::new("test CA");
    let psp = pki.client("psp-a");
    let node = secure_node(&pki, ClientAuth::Required, &psp).await;
    std::fs::write(pki.path("clients.toml"), "[[client]]\nname = \"x\"\nispbs = [\"not-an-ispb\"]\n").expect("write");
    let error = node.reload().expect_err("a broken mapping is refused");
    assert!(error.to_string().contains("clients.toml"), "the error names the file: {error}");
    let api = as_psp(&node, &pki, Some(&psp));
    assert_eq!(api.start_stream(ISPB, MULTI).await.status, StatusCode::NO_CONTENT, "the old mapping serves on");
    node.stop().await;
}
