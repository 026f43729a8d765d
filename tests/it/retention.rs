//! Retention across a cluster (SPEC.md §4): the shard leader's purger deletes the
//! confirmed messages past the tenant's retention, and every replica deletes the
//! same ones; unconfirmed messages stay, and the stream reads on.

use std::time::Duration;

use reqwest::StatusCode;
use storage::Ispb;
use wire::clock::now_ms;

use crate::harness::{ISPB, MULTI, TestCluster, messages, pulled, start_path, timing};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_purges_confirmed_messages_past_retention_on_every_replica() {
    let cluster =
        TestCluster::start_with(&["sp1", "sp2", "rj1"], 2, |f| f.limits.long_poll_wait_ms = timing::QUICK_POLL_MS)
            .await;
    let ispb = Ispb::parse(ISPB).expect("valid");
    let api = cluster.api(2);
    api.append(ISPB, &messages(ISPB, 8)).await;
    // The PSP confirms eight, then holds three more.
    let first = pulled(api.get(&start_path(ISPB), MULTI).await).await;
    assert_eq!(first.messages.len(), 8);
    let confirmed = 8;
    let next = pulled(api.get(&first.next, MULTI).await).await;
    assert_eq!(next.status, StatusCode::NO_CONTENT, "everything went out in the first batch");
    api.append(ISPB, &messages(ISPB, 3)).await;
    let held = pulled(api.get(&next.next, MULTI).await).await;
    assert_eq!(held.messages.len(), 3, "three handed out, not confirmed");
    let tenant = cluster.wait_converged(ISPB, timing::CONVERGE).await;
    assert_eq!(tenant.watermark, confirmed + 1);

    let leader = cluster.leader_of(cluster.shard_of(ISPB)).expect("a leader");
    let app = cluster.member(leader).app();
    let retention = Duration::from_secs(tenant.settings.retention_secs);
    let later = now_ms() + retention.as_millis() as u64 + 1_000;
    let purged = pixstream::retention::purge_led_tenants(app.pull.shards(), &app.store, later).await;
    assert_eq!(purged, 1, "one tenant had confirmed messages past retention");
    let all: Vec<u64> = (1..=confirmed + 3).collect();
    let deadline = tokio::time::Instant::now() + timing::CONVERGE;
    for id in cluster.running() {
        let store = &cluster.member(id).app().store;
        loop {
            let left: Vec<u64> = store.read_messages(&ispb, &all).expect("read").iter().map(|m| m.seq).collect();
            if left == (confirmed + 1..=confirmed + 3).collect::<Vec<_>>() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "node {id} still holds {left:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Nothing more is due; the held batch is still read again in full.
    assert_eq!(pixstream::retention::purge_led_tenants(app.pull.shards(), &app.store, later).await, 0);
    let again = pulled(api.get(&next.next, MULTI).await).await;
    assert_eq!(again.messages.len(), 3, "the previous token repeats the held batch");
    cluster.shutdown().await;
}
