//! Retention across a cluster (SPEC.md §4): the shard leader's purger deletes the
//! confirmed messages past the tenant's retention, and every replica deletes the
//! same ones, with the producer dedupe keys past the dedupe window; unconfirmed
//! messages stay, and the stream reads on.

use std::time::Duration;

use reqwest::StatusCode;
use storage::Ispb;
use wire::clock::now_ms;

use pixstream::retention::{Purged, Purger};

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
    let dedupe_keys = |id: u64| {
        let store = &cluster.member(id).app().store;
        storage::retention::expired_dedupe_keys(store, &ispb, u64::MAX, None, 1_000).expect("walk").expired.len()
    };
    assert_eq!(dedupe_keys(leader), 11, "one dedupe key per appended message");
    let mut purger = Purger::new(app.pull.shards().clone(), app.store.clone(), app.config.dedupe_window);
    let purged = purger.pass(later).await;
    assert_eq!(purged, Purged { messages: 1, dedupe: 1 }, "confirmed messages and dedupe keys past their time");
    let all: Vec<u64> = (1..=confirmed + 3).collect();
    let deadline = tokio::time::Instant::now() + timing::CONVERGE;
    for id in cluster.running() {
        let store = &cluster.member(id).app().store;
        loop {
            let left: Vec<u64> = store.read_messages(&ispb, &all).expect("read").iter().map(|m| m.seq).collect();
            if left == (confirmed + 1..=confirmed + 3).collect::<Vec<_>>() && dedupe_keys(id) == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "node {id} still holds {left:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Nothing more is due; the held batch is still read again in full.
    assert_eq!(purger.pass(later).await, Purged::default());
    let again = pulled(api.get(&next.next, MULTI).await).await;
    assert_eq!(again.messages.len(), 3, "the previous token repeats the held batch");
    cluster.shutdown().await;
}
