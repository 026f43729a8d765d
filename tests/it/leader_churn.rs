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
const IDLE: Duration = Duration::from_secs(4);
/// What redelivery may take beyond the idle timeout: a sweep (250 ms), one election
/// the expiry's commit may have to wait out (~1 s here), the live stream's wake-up,
/// and a margin for this shared machine.
const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// When, after the hand-out, the live stream received messages, and their ids.
type Received = (Duration, Vec<String>);

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

    // A live client on the same ISPB keeps polling through every election.
    let live = cluster.api(2).start_stream(ISPB, MULTI).await;
    assert_eq!(live.status, StatusCode::NO_CONTENT, "nothing is left for it yet");
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
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
                        if !page.messages.is_empty() {
                            received.lock().await.push((handed_out.elapsed(), page.ids()));
                        }
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

    // Change the shard's leader again and again until the batch comes back.
    let mut elections = 0;
    while received.lock().await.is_empty() {
        assert!(
            handed_out.elapsed() < IDLE + EXPIRY_SLACK + Duration::from_secs(5),
            "the abandoned batch did not come back while leaders kept changing ({elections} elections)"
        );
        if let Some(leader) = cluster.leader_of(shard) {
            cluster.faults.isolate(leader);
            cluster.wait_for_new_leader(shard, leader, Duration::from_secs(10)).await;
            cluster.faults.unblock_all();
            elections += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (returned_after, ids) = received.lock().await[0].clone();
    assert!(elections >= 2, "the leader changed repeatedly while the batch was out ({elections} elections)");
    assert_eq!(ids, expected, "the abandoned batch is redelivered with its ids, in order");
    assert!(
        returned_after <= IDLE + EXPIRY_SLACK,
        "redelivered {returned_after:?} after its hand-out; the idle timeout is {IDLE:?}"
    );
    assert!(!closed.load(Ordering::Relaxed), "the client that kept polling was never expired");
    tokio::time::timeout(Duration::from_secs(15), poller).await.expect("poller stops").expect("poller task");
    cluster.shutdown().await;
}
