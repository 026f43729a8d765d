//! Cluster status and leader transfer (SPEC.md §4, §5): `pixstream cluster status`
//! through any node shows every shard as its leader sees it — voters, leader, term,
//! indexes, each follower's lag; `pixstream cluster transfer-leader`, sent to a node
//! that does not lead the shard, moves the leadership to a third node, and the
//! shard serves on without losing a message. Bad calls are refused and change
//! nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

async fn transfer(api: &Api, shard: u32, body: &str) -> reqwest::Response {
    api.admin(Method::POST, &wire::paths::cluster_shard_leader_path(shard), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_every_shard_and_a_transfer_through_a_follower_moves_the_leader() {
    let cluster = TestCluster::start(&["sp1", "sp2", "rj1"], 2).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("leader");
    let via = cluster.running().into_iter().find(|id| *id != leader).expect("a follower");
    let target = cluster.running().into_iter().find(|id| *id != leader && *id != via).expect("a third node");
    let before = retry_until_created(&cluster.api(via), ISPB, &messages(ISPB, 5)).await;
    cluster.wait_converged(ISPB, timing::CONVERGE).await;

    let url = cluster.api(via).internal.clone();
    let (ok, text) = run_cli(&["cluster", "status", "--json", "--url", &url]).await;
    let status: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(ok, "{text}");
    assert_eq!(status["node"], via);
    assert_eq!(status["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(status["shards"].as_array().map(Vec::len), Some(2));
    let view = &status["shards"][shard as usize];
    assert_eq!((view["leader"].as_u64(), view["seen_from"].as_u64()), (Some(leader), Some(leader)), "{view}");
    assert_eq!(view["voters"], json!([1, 2, 3]));
    assert_eq!(view["followers"].as_array().map(Vec::len), Some(2), "the leader reports each follower: {view}");
    assert!(view["applied_index"].as_u64() >= Some(1), "{view}");
    let (ok, table) = run_cli(&["cluster", "status", "--url", &url]).await;
    assert!(ok && table.contains("SHARD") && table.contains("rj1"), "{table}");

    // Bad calls change nothing.
    let not_a_voter = transfer(&cluster.api(via), shard, r#"{"to": 9}"#).await;
    assert_problem(not_a_voter, 400, "invalidBody").await;
    assert_problem(transfer(&cluster.api(via), 99, r#"{"to": 1}"#).await, 400, "invalidBody").await;
    assert_problem(transfer(&cluster.api(via), shard, "not json").await, 400, "invalidBody").await;
    assert_eq!(cluster.leader_of(shard), Some(leader));

    let (ok, text) = run_cli(&[
        "cluster",
        "transfer-leader",
        "--shard",
        &shard.to_string(),
        "--to",
        &target.to_string(),
        "--url",
        &url,
    ])
    .await;
    assert!(ok && text.contains(&format!("led by node Some({target})")), "{text}");
    assert_eq!(cluster.leader_of(shard), Some(target));

    // The shard serves on through any node, in order, nothing lost.
    let after = retry_until_created(&cluster.api(leader), ISPB, &messages(ISPB, 5)).await;
    assert_eq!(after[0].seq, before.last().expect("appended").seq + 1);
    let (got, _, _) = cluster.api(via).drain(ISPB, MULTI).await;
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());

    // Transferring to the node that leads already is a no-op answered 200.
    let same = transfer(&cluster.api(leader), shard, &format!(r#"{{"to": {target}}}"#)).await;
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(cluster.leader_of(shard), Some(target));
    cluster.shutdown().await;
}
