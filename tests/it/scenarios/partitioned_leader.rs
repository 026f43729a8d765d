//! A partitioned leader: the node leading an ISPB's shard loses its links to the
//! other nodes while producers and pullers use the majority — once in process
//! (`NetworkFaults`), once between real processes in network namespaces (routes
//! cut, `harness::Mesh`). Clients that still reach the cut-off node get 503 or no answer, never
//! a success for a write the cluster did not commit; the majority elects a leader
//! and keeps serving; after healing the old leader rejoins and every replica holds
//! the same state, with every acknowledged message delivered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::settle;
use crate::harness::{
    Api, Appended, ISPB, MULTI, Mesh, NodeAddrs, ProcessCluster, TestCluster, Traffic, appended,
    assert_delivered_once_in_order, retry_until_created, samples, start_path, timing,
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
    acknowledged.extend(probe_cut_off(&cluster.api(leader)).await);
    let new_leader = cluster.wait_for_new_leader(shard, leader, timing::FAILOVER).await;
    assert!(majority.contains(&new_leader), "the majority elected node {new_leader}");

    cluster.faults.unblock_all();
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle(cluster, traffic, acknowledged).await;
}

/// Writes and opens streams through the cut-off node for 8 s: each write is
/// answered 201 (then it was committed: returned, to be checked as delivered), 503
/// with `Retry-After`, or not within `ATTEMPT`; a stream open is never answered but
/// with 503. At least one write must go unacknowledged.
async fn probe_cut_off(cut_off: &Api) -> Vec<Appended> {
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let write = tokio::time::timeout(ATTEMPT, cut_off.post_xml(ISPB, samples(ISPB, 1).remove(0), None)).await;
        match write {
            Err(_) => refused += 1,
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
    assert!(refused > 0, "the cut-off node was asked while cut off");
    acknowledged
}

/// The value of the per-shard gauge `name` for `shard` in node `api`'s `/metrics`
/// (none when the node does not answer).
async fn shard_gauge(api: &Api, name: &str, shard: u32) -> Option<i64> {
    let response = api.client.get(format!("{}/metrics", api.internal)).send().await.ok()?;
    let text = response.text().await.ok()?;
    let prefix = format!("{name}{{shard=\"{shard}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// The node among `candidates` (1-based) that reports leading `shard`.
async fn process_leader(apis: &[Api], candidates: &[usize], shard: u32) -> Option<usize> {
    for i in candidates {
        if shard_gauge(&apis[i - 1], "pixstream_shard_leader", shard).await == Some(1) {
            return Some(*i);
        }
    }
    None
}

/// Waits until one of `candidates` leads `shard`.
async fn wait_process_leader(apis: &[Api], candidates: &[usize], shard: u32) -> usize {
    let deadline = Instant::now() + timing::FAILOVER;
    loop {
        if let Some(leader) = process_leader(apis, candidates, shard).await {
            return leader;
        }
        assert!(Instant::now() < deadline, "none of nodes {candidates:?} leads shard {shard}");
        tokio::time::sleep(timing::RETRY_PAUSE).await;
    }
}

/// The same scenario between real `pixstream serve` processes, each in a network
/// namespace of its own: the leader's links to its peers are cut by routes
/// (`harness::Mesh`), not by the in-process fault transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_between_real_processes_answers_no_false_success_and_rejoins() {
    let mesh = Mesh::create(3);
    let addrs: Vec<NodeAddrs> =
        (1..=3).map(|i| NodeAddrs { host: mesh.addr(i), public: 7001, internal: 7002, peer: 7003 }).collect();
    let launchers = (1..=3).map(|i| mesh.launcher(i)).collect();
    let mut nodes = ProcessCluster::new(&addrs, launchers, timing::LONG_IDLE_MS);
    for id in 1..=3 {
        nodes.spawn(id);
    }
    for id in 1..=3 {
        nodes.wait_ready(id).await;
    }
    let apis = nodes.apis.clone();
    let shard = storage::shard_of(&storage::Ispb::parse(ISPB).expect("valid"), 4);
    let leader = wait_process_leader(&apis, &[1, 2, 3], shard).await;
    let majority: Vec<usize> = (1..=3).filter(|i| *i != leader).collect();
    let mut acknowledged = apis[leader - 1].append(ISPB, &samples(ISPB, 5)).await;
    let deadline = Instant::now() + Duration::from_secs(50);
    let (entry, other) = (apis[majority[0] - 1].clone(), apis[majority[1] - 1].clone());
    let traffic = Traffic::start(ISPB, entry.clone(), &[entry, other], deadline);
    tokio::time::sleep(Duration::from_secs(1)).await;

    mesh.cut(leader);
    let cut_off = &apis[leader - 1];
    acknowledged.extend(probe_cut_off(cut_off).await);
    let new_leader = wait_process_leader(&apis, &majority, shard).await;
    assert_ne!(new_leader, leader);

    mesh.heal(leader);
    // The old leader learns the new term and serves again (forwarding to the leader).
    let rejoined = retry_until_created(cut_off, ISPB, &samples(ISPB, 1)).await;
    acknowledged.extend(rejoined);
    let (produced, streams) = traffic.stop().await;
    assert!(!produced.is_empty(), "the majority kept acknowledging writes");
    acknowledged.extend(produced);
    assert_delivered_once_in_order(&acknowledged, &streams);
    // Converged: every node applied the shard's log as far as the leader.
    let deadline = Instant::now() + timing::CONVERGE;
    loop {
        let mut applied = Vec::new();
        for api in &apis {
            applied.push(shard_gauge(api, "pixstream_shard_applied_index", shard).await);
        }
        if applied.iter().all(|a| a.is_some() && *a == applied[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "the replicas did not converge: applied {applied:?}");
        tokio::time::sleep(timing::CLUSTER_POLL).await;
    }
}
