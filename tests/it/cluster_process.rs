//! Three real `pixstream serve --config … --node-id N` processes on 127.0.0.1:
//! `kill -9` the node that leads an ISPB's shard, and every acknowledged message is
//! still delivered, in order, through the survivors; the killed node restarts on
//! its data and serves again.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{Api, MULTI, client, free_port, pulled, samples, start_path, timing};

/// Kills every child on drop, so a failing test leaves no process behind.
struct Nodes {
    children: Vec<Option<Child>>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(config: &Path, id: u64, log_dir: &Path) -> Child {
    let log = std::fs::File::create(log_dir.join(format!("node-{id}.log"))).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_pixstream"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--node-id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn pixstream")
}

async fn wait_ready(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = api.client.get(format!("{}{}", api.internal, wire::paths::READYZ)).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "node at {} never became ready", api.internal);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_shard_leader_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("dir");
    let t = &timing::PROCESS_MEMBER;
    let mut text = format!(
        "[cluster]\nshards = 4\nheartbeat_ms = {}\nelection_timeout_ms = [{}, {}]\n[storage]\ndata_dir = {:?}\n\
         [limits]\nlong_poll_wait_ms = {}\nstream_idle_timeout_ms = {}\n",
        t.heartbeat_ms,
        t.election_timeout_ms[0],
        t.election_timeout_ms[1],
        dir.path().join("data"),
        t.long_poll_wait_ms,
        t.stream_idle_timeout_ms,
    );
    let mut apis = Vec::new();
    for id in 1..=3u64 {
        let (public, internal, peer) = (free_port(), free_port(), free_port());
        text.push_str(&format!(
            "[[nodes]]\nid = {id}\nregion = \"r{id}\"\npublic_addr = \"127.0.0.1:{public}\"\ninternal_addr = \"127.0.0.1:{internal}\"\npeer_addr = \"127.0.0.1:{peer}\"\n"
        ));
        apis.push(Api {
            client: client(),
            public: format!("http://127.0.0.1:{public}"),
            internal: format!("http://127.0.0.1:{internal}"),
        });
    }
    let config_path = dir.path().join("cluster.toml");
    std::fs::write(&config_path, &text).expect("write config");

    // An ISPB whose shard node 1 bootstraps, so node 1 leads it at first.
    let map = pixstream::config::Config::parse(&text, 1, pixstream::config::StartMode::Bootstrap)
        .expect("valid config")
        .cluster_map();
    let ispb = ["32074986", "99999A03", "60746948", "00000000", "00360305", "90400888"]
        .into_iter()
        .find(|i| map.replicas(storage::shard_of(&storage::Ispb::parse(i).expect("valid"), 4))[0] == 1)
        .expect("one of these ISPBs is bootstrapped by node 1");

    let mut nodes = Nodes { children: (1..=3).map(|id| Some(spawn(&config_path, id, dir.path()))).collect() };
    for api in &apis {
        wait_ready(api).await;
    }
    let mut acknowledged = Vec::new();
    for _ in 0..10 {
        acknowledged.extend(apis[0].append(ispb, &samples(ispb, 10)).await);
    }

    if let Some(mut leader) = nodes.children[0].take() {
        leader.kill().expect("kill -9");
        leader.wait().expect("reaped");
    }

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
    nodes.children[0] = Some(spawn(&config_path, 1, dir.path()));
    wait_ready(&apis[0]).await;
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
