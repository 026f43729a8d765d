//! A partitioned leader: the node leading an ISPB's shard loses its links to the
//! other nodes (in-process `NetworkFaults`) while producers and pullers use the
//! majority. Clients that still reach the cut-off node get 503 or no answer, never
//! a success for a write the cluster did not commit; the majority elects a leader
//! and keeps serving; after healing the old leader rejoins and every replica holds
//! the same state, with every acknowledged message delivered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{assert_every_replica_stores, last_seq};
use crate::harness::{
    ISPB, MULTI, TestCluster, Traffic, appended, assert_delivered_once_in_order, samples, start_path, timing,
};

/// How long one request to the cut-off node may wait before the test stops waiting
/// (it may never be answered while the links are down).
const ATTEMPT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_leader_answers_no_false_success_and_rejoins() {
    // Streams outlive the partition: their pulls wait out the election (and requests
    // forwarded to the cut-off leader their timeouts) without being expired.
    let cluster =
        TestCluster::start_with(&["r1", "r2", "r3"], 4, |f| f.limits.stream_idle_timeout_ms = timing::LONG_IDLE_MS)
            .await;
    let shard = cluster.shard_of(ISPB);
    let leader = cluster.leader_of(shard).expect("the shard has a leader");
    let majority: Vec<u64> = cluster.running().into_iter().filter(|n| *n != leader).collect();
    let mut acknowledged = cluster.api(leader).append(ISPB, &samples(ISPB, 5)).await;
    let deadline = Instant::now() + Duration::from_secs(50);
    let pullers = [cluster.api(majority[0]), cluster.api(majority[1])];
    let traffic = Traffic::start(ISPB, cluster.api(majority[1]), &pullers, deadline);
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.faults.isolate(leader);
    let cut_off = cluster.api(leader);
    let mut refused = 0;
    let mut unanswered = 0;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let write = tokio::time::timeout(ATTEMPT, cut_off.post_xml(ISPB, samples(ISPB, 1).remove(0), None)).await;
        match write {
            Err(_) => unanswered += 1,
            Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"), "a 503 says when to retry");
                refused += 1;
            }
            // Accepted before the node noticed it was cut off: it must then be stored.
            Ok(response) => {
                let (status, outcome) = appended(response).await;
                assert_eq!(status, StatusCode::CREATED, "the cut-off node answers a write 201, 503 or not at all");
                acknowledged.extend(outcome);
            }
        }
        let read = tokio::time::timeout(ATTEMPT, cut_off.get(&start_path(ISPB), MULTI)).await;
        if let Ok(response) = read {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "the cut-off node opens no stream");
        }
    }
    assert!(refused + unanswered > 0, "the cut-off node was asked while cut off");
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert!(majority.contains(&new_leader), "the majority elected node {new_leader}");

    cluster.faults.unblock_all();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (produced, streams) = traffic.stop().await;
    assert!(!produced.is_empty(), "the majority kept acknowledging writes");
    acknowledged.extend(produced);
    assert_delivered_once_in_order(&acknowledged, &streams);
    let state = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert!(state.next_seq > last_seq(&acknowledged), "every acknowledged message is stored");
    assert_every_replica_stores(&cluster, ISPB, &acknowledged);
    cluster.shutdown().await;
}
