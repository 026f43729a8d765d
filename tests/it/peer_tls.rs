//! Mutual TLS between the nodes (SPEC.md §6): with `[tls.peer]` every Raft RPC,
//! membership request and forwarded request travels over TLS with the cluster CA,
//! and a client holding a certificate of another CA — or none — can send none of
//! them.

use pixstream::config::PeerTlsSection;
use reqwest::StatusCode;

use crate::harness::{ISPB, MULTI, Pki, TestCluster, https_client, pulled, retry_until_created, samples, start_path};

/// Three nodes whose peer listeners speak mutual TLS with `pki`'s CA; the client
/// listeners stay plain (loopback).
async fn tls_cluster(pki: &Pki) -> TestCluster {
    for id in 1..=3 {
        pki.server(&format!("node-{id}"));
    }
    let (dir, ca_file) = (pki.dir.path().to_path_buf(), pki.ca_file());
    TestCluster::start_with(&["sp", "rj", "df"], 2, move |file| {
        file.tls.peer = Some(PeerTlsSection {
            cert_file: dir.join("node-{node_id}.pem"),
            key_file: dir.join("node-{node_id}.key"),
            ca_file: ca_file.clone(),
        });
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_over_mutual_tls_replicates_and_forwards() {
    let pki = Pki::new("cluster CA");
    let cluster = tls_cluster(&pki).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("the shard has a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let produced = retry_until_created(&cluster.api(follower), ISPB, &samples(ISPB, 4)).await;
    let state = cluster.wait_converged(ISPB, std::time::Duration::from_secs(20)).await;
    assert_eq!(state.next_seq, 5, "every replica applied the appends sent over TLS");
    let api = cluster.api(follower);
    let first = pulled(api.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!(first.ids(), produced.iter().map(|a| a.resource_id.clone()).collect::<Vec<_>>(), "forwarded pull");
    assert_eq!(api.follow(&first.next, MULTI).await.status, StatusCode::NO_CONTENT);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_of_another_ca_can_send_no_raft_rpc_forwarded_request_or_membership_request() {
    let pki = Pki::new("cluster CA");
    let cluster = tls_cluster(&pki).await;
    let peer = cluster.member(1).config.peer_addr;
    let stranger = Pki::new("another CA");
    let impostor = stranger.ca.issue_server("node-9", &["127.0.0.1".to_owned()]).expect("certificate");
    let targets = [
        "/peer/v1/raft/0/vote".to_owned(),
        format!("/peer/v1/forward{}", start_path(ISPB)),
        "/peer/v1/membership/0".to_owned(),
    ];
    // Trusting the cluster CA (so the server is accepted) but presenting a foreign
    // certificate, or none, or speaking plain HTTP: every attempt fails.
    let foreign = https_client(&pki.ca.cert_pem(), Some(&impostor));
    let anonymous = https_client(&pki.ca.cert_pem(), None);
    let plain = reqwest::Client::new();
    for path in &targets {
        let url = format!("https://{peer}{path}");
        assert!(foreign.post(&url).body("x").send().await.is_err(), "{path}: foreign certificate refused");
        assert!(anonymous.post(&url).body("x").send().await.is_err(), "{path}: no certificate refused");
        let answer = plain.post(format!("http://{peer}{path}")).body("x").send().await;
        assert!(answer.is_err() || !answer.expect("answer").status().is_success(), "{path}: plain HTTP refused");
    }
    // The same request with a certificate of the cluster CA is served.
    let member = https_client(&pki.ca.cert_pem(), Some(&pki.ca.issue_server("node-8", &[]).expect("certificate")));
    let answer = member.get(format!("https://{peer}/peer/v1/forward{}", start_path(ISPB))).send().await;
    assert!(answer.expect("served").status().is_success(), "a cluster certificate passes");
    cluster.shutdown().await;
}
