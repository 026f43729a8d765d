//! Three real `pixstream serve --config … --node-id N` processes on 127.0.0.1:
//! `kill -9` the node that leads an ISPB's shard, and every acknowledged message is
//! still delivered, in order, through the survivors; the killed node restarts on
//! its data and serves again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{MULTI, NodeAddrs, ProcessCluster, pulled, samples, start_path, timing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_shard_leader_loses_no_acknowledged_message() {
    let addrs = [NodeAddrs::loopback(), NodeAddrs::loopback(), NodeAddrs::loopback()];
    let mut nodes = ProcessCluster::new(&addrs, vec![], timing::PROCESS_MEMBER.stream_idle_timeout_ms);
    let (apis, text) = (nodes.apis.clone(), nodes.text.clone());

    // An ISPB whose shard node 1 bootstraps, so node 1 leads it at first.
    let map = pixstream::config::Config::parse(&text, 1, pixstream::config::StartMode::Bootstrap)
        .expect("valid config")
        .cluster_map();
    let ispb = ["32074986", "99999A03", "60746948", "00000000", "00360305", "90400888"]
        .into_iter()
        .find(|i| map.replicas(storage::shard_of(&storage::Ispb::parse(i).expect("valid"), 4))[0] == 1)
        .expect("one of these ISPBs is bootstrapped by node 1");

    for id in 1..=3 {
        nodes.spawn(id);
    }
    for id in 1..=3 {
        nodes.wait_ready(id).await;
    }
    let mut acknowledged = Vec::new();
    for _ in 0..10 {
        acknowledged.extend(apis[0].append(ispb, &samples(ispb, 10)).await);
    }

    nodes.kill_9(1);

    // Through a survivor: retry 503s while the shard elects, then drain in order.
    let survivor = &apis[1];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut page = loop {
        let response = survivor.get(&start_path(ispb), MULTI).await;
        if response.status().is_success() {
            break pulled(response).await;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no new leader within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut received = Vec::new();
    while page.status == StatusCode::OK {
        received.extend(page.ids());
        page = survivor.follow(&page.next, MULTI).await;
    }
    let expected: Vec<String> = acknowledged.iter().map(|a| a.resource_id.clone()).collect();
    assert_eq!(received, expected, "every acknowledged message, in order, after kill -9 of the leader");

    // The killed node comes back on its data and serves (forwarding if needed).
    nodes.spawn(1);
    nodes.wait_ready(1).await;
    let more = loop {
        let response = apis[0].post_xml(ispb, samples(ispb, 1).remove(0), None).await;
        if response.status() == StatusCode::CREATED {
            break crate::harness::appended(response).await.1;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(30), "restarted node never accepted a write");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(more[0].seq, 101, "seqs continue after the failover");
    let last = apis[2].follow(&page.next, MULTI).await;
    assert_eq!(last.ids(), vec![more[0].resource_id.clone()]);
}
