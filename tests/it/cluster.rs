//! The replicated appliance (SPEC.md §5): any node answers any request by forwarding
//! to the shard leader, tokens work on every node, a leader's death loses no
//! acknowledged message and keeps streams and their order, a cut-off leader never
//! acknowledges a write, and replicas converge after healing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{
    Api, ISPB, MULTI, OTHER_ISPB, TestCluster, Traffic, delivered, pulled, retry_until_created, retry_until_ok,
    samples, timing,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_answers_and_tokens_work_on_every_node() {
    let cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    let leaders: BTreeSet<u64> = (0..4).filter_map(|s| cluster.leader_of(s)).collect();
    assert!(leaders.len() > 1, "leaders are spread over the nodes, not all on one: {leaders:?}");

    let produced = cluster.api(2).append(ISPB, &samples(ISPB, 25)).await;
    cluster.api(3).append(OTHER_ISPB, &samples(OTHER_ISPB, 3)).await;

    // One stream, continued on a different node at every step.
    let first = cluster.api(1).start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 10);
    let second = cluster.api(2).follow(&first.next, MULTI).await;
    let again = cluster.api(3).follow(&first.next, MULTI).await;
    assert_eq!(again.ids(), second.ids(), "the previous token repeats the batch on another node");
    assert_eq!(again.next, second.next, "and gives the same next token");
    let third = cluster.api(1).follow(&second.next, MULTI).await;
    let empty = cluster.api(3).follow(&third.next, MULTI).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);

    let ids: Vec<String> = [&first, &second, &third].iter().flat_map(|p| p.ids()).collect();
    let expected: Vec<String> = produced.iter().map(|a| a.resource_id.clone()).collect();
    assert_eq!(ids, expected, "the log arrives in order, across nodes, without gaps or duplicates");
    let closed = cluster.api(2).delete(&empty.next).await;
    assert_eq!(closed.status(), StatusCode::OK);
    let state = cluster.wait_converged(ISPB, Duration::from_secs(10)).await;
    assert_eq!(state.watermark, 26, "every replica saw every confirmation");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_death_keeps_streams_tokens_order_and_every_acknowledged_message() {
    let mut cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("shard has a leader");
    let survivor = cluster.running().into_iter().find(|n| *n != leader).expect("three nodes");

    let before = cluster.api(survivor).append(ISPB, &samples(ISPB, 30)).await;
    let first = cluster.api(survivor).start_stream(ISPB, MULTI).await;
    assert_eq!(first.messages.len(), 10);

    cluster.stop(leader).await;
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert_ne!(new_leader, leader);

    // The token issued before the failover still works: the previous-token retry
    // repeats the batch, the current one continues in order.
    let api = cluster.api(survivor);
    let repeat = retry_until_ok(|| api.follow_raw(&first.next)).await;
    let repeat = pulled(repeat).await;
    let after = cluster.api(survivor).append(ISPB, &samples(ISPB, 5)).await;
    let mut received: Vec<String> = first.ids();
    received.extend(repeat.ids());
    let mut next = repeat.next.clone();
    loop {
        let page = pulled(retry_until_ok(|| api.follow_raw(&next)).await).await;
        if page.status == StatusCode::NO_CONTENT {
            break;
        }
        received.extend(page.ids());
        next = page.next.clone();
    }
    let expected: Vec<String> = before.iter().chain(&after).map(|a| a.resource_id.clone()).collect();
    assert_eq!(received, expected, "no acknowledged message lost, order kept across the failover");

    cluster.restart(leader).await;
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!(state.next_seq, 36, "the restarted node caught up");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_leader_never_acknowledges_and_replicas_converge_after_healing() {
    let cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("shard has a leader");
    cluster.api(leader).append(ISPB, &samples(ISPB, 3)).await;

    cluster.faults.isolate(leader);
    // Through the isolated node: a write is never acknowledged (503 or timeout).
    let isolated = cluster.api(leader);
    let body = samples(ISPB, 1).remove(0);
    let attempt = tokio::time::timeout(Duration::from_secs(15), isolated.post_xml(ISPB, body, None)).await;
    if let Ok(response) = attempt {
        assert_ne!(response.status(), StatusCode::CREATED, "a minority leader acknowledged a write");
        assert!(response.status().is_server_error(), "refused with 5xx, got {}", response.status());
    }
    // The majority elects a leader and commits.
    let majority: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert!(majority.contains(&new_leader));
    let api = cluster.api(majority[0]);
    let committed = retry_until_created(&api, ISPB, &samples(ISPB, 4)).await;
    assert_eq!(committed.len(), 4);

    cluster.faults.unblock_all();
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    let stored = state.next_seq - 1;
    assert!(stored == 7 || stored == 8, "3 + 4 acknowledged (+1 that may have committed after healing): {stored}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producers_and_six_pullers_lose_nothing_when_the_leader_dies() {
    let mut cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("leader");
    let survivors: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    let apis: Vec<Api> = survivors.iter().map(|id| cluster.api(*id)).collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    let pullers: Vec<Api> = (0..6).map(|i| apis[i % apis.len()].clone()).collect();
    let traffic = Traffic::start(ISPB, apis[0].clone(), &pullers, deadline);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.stop(leader).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (acknowledged, streams) = traffic.stop().await;
    let delivered_ids: BTreeSet<String> = delivered(&streams).into_values().collect();
    let lost: Vec<_> = acknowledged.iter().filter(|a| !delivered_ids.contains(&a.resource_id)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages never delivered: {lost:?}", lost.len());
    assert!(acknowledged.len() > 20, "the producer made progress: {}", acknowledged.len());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_stays_correct_with_30_ms_between_regions() {
    let cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    // 30 ms one way on every cross-region link (each node is its own region here).
    for from in 1..=3u64 {
        for to in 1..=3u64 {
            if from != to {
                cluster.faults.set_delay(from, to, Duration::from_millis(30));
            }
        }
    }
    let started = Instant::now();
    let produced = cluster.api(1).append(ISPB, &samples(ISPB, 20)).await;
    let append_took = started.elapsed();
    assert!(append_took >= Duration::from_millis(30), "a commit needs a cross-region round trip: {append_took:?}");

    // One stream followed alternately through every node, then closed.
    let mut page = cluster.api(2).start_stream(ISPB, MULTI).await;
    let mut received = Vec::new();
    for hop in 0.. {
        received.extend(page.ids());
        if page.status == StatusCode::NO_CONTENT {
            break;
        }
        page = cluster.api(1 + (hop % 3)).follow(&page.next, MULTI).await;
    }
    let expected: Vec<String> = produced.iter().map(|a| a.resource_id.clone()).collect();
    assert_eq!(received, expected);
    assert_eq!(cluster.api(3).delete(&page.next).await.status(), StatusCode::OK);
    let state = cluster.wait_converged(ISPB, Duration::from_secs(20)).await;
    assert_eq!(state.watermark, 21);
    assert!(state.streams.is_empty());
    cluster.shutdown().await;
}
