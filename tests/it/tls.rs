//! HTTPS on the public listener (SPEC.md §6): the pull protocol over mutual TLS, the
//! client certificate → ISPB mapping checked per request (a revoked mapping takes
//! effect on an open keep-alive connection), `client_auth = optional` and
//! `required`, and reload of certificates and mapping without dropping connections
//! (a bad new file keeps the old configuration).

use pixstream::certs::IssuedCertificate;
use pixstream::config::{ClientAuth, ConfigFile};
use reqwest::StatusCode;

use rustls_pki_types::pem::PemObject;

use crate::harness::{Api, ISPB, MULTI, OTHER_ISPB, Pki, TestNode, assert_problem, pulled, samples, start_path};

/// A node whose public listener speaks TLS with `client_auth`, its mapping letting
/// `psp` read `ISPB` only; the internal listener stays plain (loopback).
async fn secure_node(pki: &Pki, client_auth: ClientAuth, psp: &IssuedCertificate) -> TestNode {
    pki.server("node");
    let clients = pki.write_clients(&[("psp-a", psp, &[ISPB])]);
    let tls = pki.server_tls(client_auth, Some(clients));
    TestNode::start(move |file: &mut ConfigFile| file.tls.public = Some(tls)).await
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

#[tokio::test]
async fn tls12_ecdhe_rsa_aes128_gcm_sha256_works_with_an_rsa_server_certificate() {
    use rustls::{CipherSuite, ProtocolVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pki = Pki::new("test CA");
    let rsa_key = include_str!("../fixtures/rsa-2048.key");
    let certificate =
        pki.ca.issue_server_for_key("node", &["127.0.0.1".to_owned()], rsa_key).expect("RSA server certificate");
    certificate.write(pki.dir.path(), "node").expect("write");
    let tls = pki.server_tls(ClientAuth::None, None);
    let node = TestNode::start(move |file: &mut ConfigFile| file.tls.public = Some(tls)).await;

    // A client that offers TLS 1.2 and the one suite ICOM clients pin, nothing else.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256];
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pki_types::CertificateDer::pem_slice_iter(pki.ca.cert_pem().as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let address = node.api.public.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = connector.connect(name, tcp).await.expect("the handshake succeeds");
    let session = tls.get_ref().1;
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(
        session.negotiated_cipher_suite().map(|s| s.suite()),
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
    );
    let request = format!("GET {} HTTP/1.1\r\nHost: pixstream\r\nConnection: close\r\n\r\n", start_path(ISPB));
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 204"), "the pull is served over that suite: {answer}");
    node.stop().await;
}
