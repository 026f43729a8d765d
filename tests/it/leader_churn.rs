//! Idle expiry under repeated leader changes (issue 10): a batch whose client is gone
//! comes back within `stream_idle_timeout` of its hand-out however often the shard
//! elects a new leader, and a client that keeps polling is never expired by them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use crate::harness::{ISPB, MULTI, TestCluster, pulled, retry_until_created, samples};

/// The idle timeout of the test: long enough for several elections inside it.
const IDLE: Duration = Duration::from_secs(5);
/// What the expiry may take beyond the idle timeout: a sweep (250 ms), and the
/// election its commit may have to wait out (~1 s here, several on a loaded machine).
const EXPIRY_SLACK: Duration = Duration::from_secs(5);
/// How long a new leader leads before the next change: the cluster keeps working.
const LEADER_TENURE: Duration = Duration::from_millis(1200);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue10_an_abandoned_batch_returns_within_the_idle_timeout_while_leaders_keep_changing() {
    let cluster = TestCluster::start_with(&["sp", "rj", "df"], 2, |file| {
        file.cluster.election_timeout_ms = [300, 600];
        file.limits.stream_idle_timeout_ms = IDLE.as_millis() as u64;
    })
    .await;
    let shard = cluster.shard_of(ISPB);
    let produced = retry_until_created(&cluster.api(1), ISPB, &samples(ISPB, 3)).await;
    let abandoned = cluster.api(1).start_stream(ISPB, MULTI).await;
    let handed_out = Instant::now();
    let expected: Vec<String> = produced.iter().map(|a| a.resource_id.clone()).collect();
    assert_eq!(abandoned.ids(), expected, "the abandoned stream holds every message");
    let abandoned_id = only_stream(&cluster).await;

    // A live client on the same ISPB keeps polling through every election; it will
    // receive the abandoned batch once that returns.
    let live = cluster.api(2).start_stream(ISPB, MULTI).await;
    assert_eq!(live.status, StatusCode::NO_CONTENT, "nothing is left for it yet");
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let closed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (api, received, closed, stop) = (cluster.api(2), received.clone(), closed.clone(), stop.clone());
        let mut next = live.next.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(response) = api.follow_raw(&next).await else { continue };
                match response.status() {
                    StatusCode::OK | StatusCode::NO_CONTENT => {
                        let page = pulled(response).await;
                        received.lock().await.extend(page.ids());
                        next = page.next.clone();
                    }
                    StatusCode::GONE => {
                        closed.store(true, Ordering::Relaxed);
                        return;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    };

    // Change the shard's leader again and again until a replica applied the expiry.
    let mut elections = 0;
    while stream_open(&cluster, abandoned_id) && handed_out.elapsed() < IDLE + EXPIRY_SLACK {
        if let Some(leader) = cluster.leader_of(shard) {
            cluster.faults.isolate(leader);
            cluster.wait_for_new_leader(shard, leader, Duration::from_secs(10)).await;
            cluster.faults.unblock_all();
            elections += 1;
        }
        tokio::time::sleep(LEADER_TENURE).await;
    }
    let expired_after = handed_out.elapsed();
    assert!(
        !stream_open(&cluster, abandoned_id),
        "the abandoned stream was not expired within {:?} of its hand-out ({elections} elections)",
        IDLE + EXPIRY_SLACK
    );
    assert!(elections >= 2, "the leader changed repeatedly while the batch was out ({elections} elections)");
    assert!(expired_after >= IDLE, "not expired before its idle timeout ({expired_after:?})");

    let deadline = Instant::now() + Duration::from_secs(20);
    while received.lock().await.len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(*received.lock().await, expected, "the abandoned batch is redelivered, same ids, in order");
    assert!(!closed.load(Ordering::Relaxed), "the client that kept polling was never expired");
    tokio::time::timeout(Duration::from_secs(40), poller).await.expect("poller stops").expect("poller task");
    cluster.shutdown().await;
}

/// The id of the ISPB's one open stream, once every replica holds it (a follower may
/// apply the open a moment after the leader answered).
async fn only_stream(cluster: &TestCluster) -> u64 {
    let tenant = cluster.wait_converged(ISPB, Duration::from_secs(10)).await;
    let streams: Vec<u64> = tenant.streams.keys().copied().collect();
    assert_eq!(streams.len(), 1, "one stream is open");
    streams[0]
}

/// Whether every running replica still holds `stream` open.
fn stream_open(cluster: &TestCluster, stream: u64) -> bool {
    cluster.tenant_views(ISPB).iter().all(|(_, view)| view.as_ref().is_some_and(|t| t.streams.contains_key(&stream)))
}
