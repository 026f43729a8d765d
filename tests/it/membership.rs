//! Online membership changes (SPEC.md §5 "Membership changes move shard replicas
//! without downtime"): while a producer and a PSP stream run, a fourth node joins
//! and the admin API moves replicas onto it, then a node is removed from every
//! shard and stopped; the stream continues through another node, every
//! acknowledged message is delivered, and each seq always carries the same id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pixstream::api::cluster_admin::{MEMBERS_PATH, MembersAnswer};
use pixstream::config::{ClusterNode, StartMode};
use reqwest::StatusCode;

use crate::harness::{Api, Appended, TestCluster, pulled, retry_until_created, samples, start_path};

/// Bound of every wait in this file.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joins_and_another_leaves_while_traffic_runs_and_nothing_is_lost() {
    let began = Instant::now();
    let mut cluster = TestCluster::start(&["sp", "rj", "df"], 4).await;
    // With node 4 in its own region every shard is re-placed over four regions;
    // pick an ISPB whose shard gains node 4, so its replica there must catch up.
    let planned = placement(&cluster.nodes(), &[(4, "mg")]);
    let ispb = (0..10_000)
        .map(|n| format!("{n:08}"))
        .find(|i| planned.replicas(cluster.shard_of(i)).contains(&4))
        .expect("some ISPB lands on a shard that gains node 4");
    let shard = cluster.shard_of(&ispb);

    let producing = Arc::new(AtomicBool::new(true));
    let produced_all = Arc::new(AtomicBool::new(false));
    let entry = Arc::new(AtomicU64::new(1));
    let producer = tokio::spawn(produce(cluster.api(2), ispb.clone(), producing.clone()));
    let apis: BTreeMap<u64, Api> = [1, 3].into_iter().map(|id| (id, cluster.api(id))).collect();
    let puller = tokio::spawn(pull(apis, entry.clone(), ispb.clone(), produced_all.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Node 4 joins; the admin API of node 2 moves replicas onto it.
    cluster.add_member(4, "mg", true).await;
    let all = cluster.nodes();
    let added = Instant::now();
    let answer = cluster.post_members(2, &all).await;
    eprintln!("adding node 4 took {:?}", added.elapsed());
    for shard in 0..4 {
        let expected: BTreeSet<u64> = planned.replicas(shard).into_iter().collect();
        assert_eq!(voters_in(&answer, shard), expected, "the answer names the new placement of shard {shard}");
        assert_eq!(leader_voters(&cluster, shard).await, expected, "shard {shard}'s Raft membership is the new one");
    }
    assert!((0..4).any(|s| planned.replicas(s).contains(&4)), "node 4 replicates some shards");

    // The same list again changes nothing: no new membership entry anywhere.
    let before: Vec<_> = (0..4).map(|s| membership_log_id(&cluster, s)).collect();
    let again = cluster.post_members(2, &all).await;
    assert_eq!(again.shards, answer.shards, "reconciling to the same list is a no-op");
    let after: Vec<_> = (0..4).map(|s| membership_log_id(&cluster, s)).collect();
    assert_eq!(before, after, "no membership entry was written");

    // Node 4's replica of the shard catches up with its leader.
    let leader = wait_leader(&cluster, shard).await;
    let target = tenant_next_seq(&cluster, leader, &ispb).expect("the leader holds the tenant");
    wait_until("node 4 catches up with the leader", || {
        tenant_next_seq(&cluster, 4, &ispb).is_some_and(|seq| seq >= target)
    })
    .await;

    // Node 1 leaves every shard, then is stopped; the stream moves to node 3.
    let without_one: Vec<ClusterNode> = all.iter().filter(|n| n.id != 1).cloned().collect();
    let removed = Instant::now();
    let answer = cluster.post_members(2, &without_one).await;
    eprintln!("removing node 1 took {:?}", removed.elapsed());
    for shard in 0..4 {
        assert_eq!(voters_in(&answer, shard), BTreeSet::from([2, 3, 4]), "shard {shard} without node 1");
        assert!(!leader_voters(&cluster, shard).await.contains(&1), "node 1 still votes in shard {shard}");
    }
    entry.store(3, Ordering::Relaxed);
    cluster.stop(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    producing.store(false, Ordering::Relaxed);
    let acknowledged = producer.await.expect("producer");
    produced_all.store(true, Ordering::Relaxed);
    let delivered = puller.await.expect("puller");
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    for (seq, id) in &delivered {
        if let Some(previous) = by_seq.insert(*seq, id.clone()) {
            assert_eq!(&previous, id, "seq {seq} always carries the same resource id");
        }
    }
    for a in &acknowledged {
        assert_eq!(by_seq.get(&a.seq), Some(&a.resource_id), "acknowledged seq {} delivered with its id", a.seq);
    }
    assert!(acknowledged.len() > 20, "the producer made progress: {}", acknowledged.len());
    let state = cluster.wait_converged(&ispb, WAIT).await;
    assert_eq!(cluster.tenant_views(&ispb).len(), 3, "nodes 2, 3 and 4 hold the shard");
    let last = acknowledged.iter().map(|a| a.seq).max().unwrap_or(0);
    assert!(state.next_seq > last, "every replica holds every acknowledged message");
    eprintln!("{} acknowledged, {} delivered, {:?} in all", acknowledged.len(), by_seq.len(), began.elapsed());
    cluster.shutdown().await;
}

/// The placement of `nodes` plus `extra` (id, region) nodes, 4 shards, rf 3.
fn placement(nodes: &[ClusterNode], extra: &[(u64, &str)]) -> raft::ClusterMap {
    let mut members: Vec<raft::MemberNode> = nodes
        .iter()
        .map(|n| raft::MemberNode { id: n.id, region: n.region.clone(), peer_addr: n.peer_addr.to_string() })
        .collect();
    members.extend(extra.iter().map(|(id, region)| raft::MemberNode {
        id: *id,
        region: (*region).to_owned(),
        peer_addr: format!("planned-{id}"),
    }));
    raft::ClusterMap { nodes: members, shards: 4, replication_factor: 3 }
}

fn voters_in(answer: &MembersAnswer, shard: u32) -> BTreeSet<u64> {
    let entry = answer.shards.iter().find(|s| s.shard == shard).expect("every shard is in the answer");
    entry.voters.iter().copied().collect()
}

async fn wait_leader(cluster: &TestCluster, shard: u32) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(leader) = cluster.leader_of(shard) {
            return leader;
        }
        assert!(Instant::now() < deadline, "shard {shard} has no leader after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The voters of `shard` as its current leader knows them.
async fn leader_voters(cluster: &TestCluster, shard: u32) -> BTreeSet<u64> {
    let leader = wait_leader(cluster, shard).await;
    cluster.member(leader).app().shards.voters(shard).into_iter().collect()
}

/// The log id of the membership in effect on any running member of `shard`'s group.
fn membership_log_id(cluster: &TestCluster, shard: u32) -> Option<raft::LogId> {
    let leader = cluster.leader_of(shard).expect("shard has a leader");
    let metrics = cluster.member(leader).app().shards.metrics(shard).expect("the leader runs the group");
    *metrics.membership_config.log_id()
}

fn tenant_next_seq(cluster: &TestCluster, node: u64, ispb: &str) -> Option<u64> {
    let ispb = storage::Ispb::parse(ispb).expect("valid ISPB");
    let shards = &cluster.member(node).app().shards;
    shards.read(&ispb, |m| m.tenant(&ispb).map(|t| t.next_seq)).flatten()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Appends batches of 5 until told to stop, retrying 503s and broken connections
/// (the dedupe key makes a retried post idempotent); returns what was acknowledged.
async fn produce(api: Api, ispb: String, producing: Arc<AtomicBool>) -> Vec<Appended> {
    let mut acknowledged = Vec::new();
    while producing.load(Ordering::Relaxed) {
        acknowledged.extend(retry_until_created(&api, &ispb, &samples(&ispb, 5)).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged
}

/// One PSP stream through the node `entry` names at each request: follows its
/// cursor, retrying 503s and broken connections with the same token, until the
/// producer finished and a long poll came back empty; returns every (seq, id).
async fn pull(
    apis: BTreeMap<u64, Api>,
    entry: Arc<AtomicU64>,
    ispb: String,
    produced_all: Arc<AtomicBool>,
) -> Vec<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let api = |entry: &AtomicU64| apis[&entry.load(Ordering::Relaxed)].clone();
    let get = |path: String| {
        let api = api(&entry);
        async move { api.client.get(format!("{}{path}", api.public)).header("accept", "multipart/mixed").send().await }
    };
    let mut path = start_path(&ispb);
    let mut received = Vec::new();
    loop {
        let page = match get(path.clone()).await {
            Ok(response) if response.status().is_success() => pulled(response).await,
            Ok(response) => {
                let status = response.status();
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "only 503 is retried: {status}");
                assert!(Instant::now() < deadline, "the stream stayed unavailable");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                assert!(Instant::now() < deadline, "the stream stayed unreachable");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        received.extend(page.messages.iter().map(|m| (m.seq, m.resource_id.clone())));
        path = page.next.clone();
        if page.status == StatusCode::NO_CONTENT && produced_all.load(Ordering::Relaxed) {
            break;
        }
        assert!(Instant::now() < deadline, "the stream did not run dry in time");
    }
    let api = api(&entry);
    let _ = api.client.delete(format!("{}{path}", api.public)).send().await;
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_changes_membership_and_a_joined_node_resumes_its_shards_after_restart() {
    let mut cluster = TestCluster::start(&["sp", "rj", "df"], 2).await;
    let shard = 0;
    let leader = wait_leader(&cluster, shard).await;
    let follower = cluster.running().into_iter().find(|n| *n != leader).expect("three nodes");
    let desired = cluster.member(leader).app().shards.cluster().members(shard);

    // The leader reconciles to the membership the group has: nothing is written.
    let before = membership_log_id(&cluster, shard);
    let voters = cluster.member(leader).app().shards.reconcile_members(shard, desired.clone()).await;
    assert_eq!(voters.expect("no-op change succeeds"), vec![1, 2, 3]);
    assert_eq!(membership_log_id(&cluster, shard), before, "an unchanged membership writes no entry");
    // A follower refuses, naming the leader.
    let refused = cluster.member(follower).app().shards.reconcile_members(shard, desired).await;
    assert!(
        matches!(refused, Err(raft::Error::NotLeader { leader: Some(l) }) if l == leader),
        "a follower answers NotLeader: {refused:?}"
    );

    // A body that is not a node list is refused with 400.
    let client = reqwest::Client::builder().timeout(WAIT).build().expect("client");
    let url = format!("{}{MEMBERS_PATH}", cluster.api(1).internal);
    for body in [r#"{"nodes":[{"id":1}]}"#, r#"{"nodes":[]}"#, "not json"] {
        let response = client.post(&url).body(body).send().await.expect("answers");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }

    // A joining node is ready at once (it waits for no shard it was not added to).
    cluster.add_member(4, "mg", true).await;
    let ready =
        client.get(format!("{}{}", cluster.api(4).internal, wire::paths::READYZ)).send().await.expect("answers");
    assert_eq!(ready.status(), StatusCode::OK, "a joined node that replicates nothing yet is ready");
    let all = cluster.nodes();
    let answer = cluster.post_members(4, &all).await;
    let planned = placement(&all[..3], &[(4, "mg")]);
    let mine: Vec<u32> = (0..2).filter(|s| planned.replicas(*s).contains(&4)).collect();
    assert!(!mine.is_empty(), "node 4 replicates some shard");
    for shard in 0..2 {
        let expected: BTreeSet<u64> = planned.replicas(shard).into_iter().collect();
        assert_eq!(voters_in(&answer, shard), expected, "a change posted to the new node itself works");
    }

    // Restarted without --join, node 4 resumes the shards it was added to.
    cluster.restart_as(4, StartMode::Bootstrap).await;
    for shard in mine {
        let shards = &cluster.member(4).app().shards;
        assert!(shards.is_member(shard), "node 4 still replicates shard {shard} after a restart");
        wait_until("node 4 knows the leader again", || shards.leader_of(shard).is_some()).await;
    }
    cluster.shutdown().await;
}
