//! `ServeProcess`: the real `pixstream serve` binary as a child process on loopback
//! ports, its stderr (the log) in a file beside its data dir, SIGKILLed when
//! dropped (also on panic).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Api, client};

/// A running `pixstream serve`.
pub struct ServeProcess {
    child: Child,
    pub api: Api,
    /// Its stderr: the log lines.
    pub log: PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `pixstream` binary with `args` to its end (asynchronously: an
/// in-process node it talks to shares this runtime); (success, stdout + stderr).
pub async fn run_cli(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pixstream")).args(args).output().await.expect("runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

/// A loopback port for a child process to bind: nobody listens on it now, and it lies
/// below the kernel's ephemeral range (32768–60999 by default), so that none of the
/// many client sockets the tests open meanwhile can take it as its source port.
/// Ports are handed out in turn from an offset drawn from the pid, so concurrent
/// test processes start apart.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 600) * 20;
    loop {
        let port = (FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl ServeProcess {
    /// Starts the embedded single node on `data_dir` (run number `run` names the
    /// log), with `args` added (`--log-format json`) and `RUST_LOG=rust_log`, and
    /// waits until it answers `/healthz`.
    pub async fn spawn(data_dir: &Path, run: usize, args: &[&str], rust_log: &str) -> ServeProcess {
        let (public, internal) = (free_port(), free_port());
        let log = data_dir.with_extension(format!("serve-{run}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_pixstream"))
            .args(args)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--public-addr")
            .arg(format!("127.0.0.1:{public}"))
            .arg("--internal-addr")
            .arg(format!("127.0.0.1:{internal}"))
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pixstream serve");
        let api = Api {
            client: client(),
            public: format!("http://127.0.0.1:{public}"),
            internal: format!("http://127.0.0.1:{internal}"),
        };
        let mut server = ServeProcess { child, api, log };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("pixstream serve exited with {status}: {}", self.log_text());
            }
            let health = probe.get(format!("{}{}", self.api.internal, wire::paths::HEALTHZ)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "pixstream serve not ready after 60 s: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// Where one node of a `ProcessCluster` listens: one host address, three ports.
#[derive(Clone, Debug)]
pub struct NodeAddrs {
    pub host: String,
    pub public: u16,
    pub internal: u16,
    pub peer: u16,
}

impl NodeAddrs {
    /// Three free loopback ports.
    pub fn loopback() -> NodeAddrs {
        NodeAddrs { host: "127.0.0.1".into(), public: free_port(), internal: free_port(), peer: free_port() }
    }
}

/// Real `pixstream serve --config … --node-id N` processes sharing one cluster file
/// (4 shards, `timing::PROCESS_MEMBER` but for the streams' idle timeout, data
/// under the temp dir), each run through
/// its launcher (`[]`, or e.g. `["ip", "netns", "exec", "ns1"]`), its stderr in
/// `node-N.log`; every child is SIGKILLed on drop, so a failing test leaves none
/// behind.
pub struct ProcessCluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The cluster file's text (to compute placements from).
    pub text: String,
    pub apis: Vec<Api>,
    launchers: Vec<Vec<String>>,
    children: Vec<Option<Child>>,
}

impl ProcessCluster {
    /// Writes the cluster file for `nodes` (node i+1 in region `r{i+1}`) with
    /// `stream_idle_timeout_ms`, and starts nothing yet.
    pub fn new(nodes: &[NodeAddrs], launchers: Vec<Vec<String>>, stream_idle_timeout_ms: u64) -> ProcessCluster {
        let dir = tempfile::tempdir().expect("dir");
        let t = &super::timing::PROCESS_MEMBER;
        let mut text = format!(
            "[cluster]\nshards = 4\nheartbeat_ms = {}\nelection_timeout_ms = [{}, {}]\n[storage]\ndata_dir = {:?}\n\
             [limits]\nlong_poll_wait_ms = {}\nstream_idle_timeout_ms = {}\n",
            t.heartbeat_ms,
            t.election_timeout_ms[0],
            t.election_timeout_ms[1],
            dir.path().join("data"),
            t.long_poll_wait_ms,
            stream_idle_timeout_ms,
        );
        if nodes.iter().any(|n| n.host != "127.0.0.1") {
            // Namespaces of the test's own: their addresses are reachable from this
            // host only.
            text.push_str("[internal_auth]\nallow_anonymous = true\n");
        }
        let mut apis = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let (id, host) = (i + 1, &n.host);
            text.push_str(&format!(
                "[[nodes]]\nid = {id}\nregion = \"r{id}\"\npublic_addr = \"{host}:{}\"\ninternal_addr = \"{host}:{}\"\npeer_addr = \"{host}:{}\"\n",
                n.public, n.internal, n.peer
            ));
            apis.push(Api {
                client: client(),
                public: format!("http://{host}:{}", n.public),
                internal: format!("http://{host}:{}", n.internal),
            });
        }
        let config = dir.path().join("cluster.toml");
        std::fs::write(&config, &text).expect("write config");
        let children = nodes.iter().map(|_| None).collect();
        ProcessCluster { dir, config, text, apis, launchers, children }
    }

    /// Starts node `id` (again).
    pub fn spawn(&mut self, id: u64) {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{id}.log"))).expect("log file");
        let launcher = self.launchers.get((id - 1) as usize).cloned().unwrap_or_default();
        let binary = env!("CARGO_BIN_EXE_pixstream").to_owned();
        let (program, pre) = match launcher.split_first() {
            Some((program, pre)) => (program.clone(), [pre, &[binary]].concat()),
            None => (binary, Vec::new()),
        };
        let child = Command::new(program)
            .args(pre)
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--node-id", &id.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn pixstream");
        self.children[(id - 1) as usize] = Some(child);
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill_9(&mut self, id: u64) {
        if let Some(mut child) = self.children[(id - 1) as usize].take() {
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
        }
    }

    /// Waits until node `id` answers `/readyz` with 200.
    pub async fn wait_ready(&self, id: u64) {
        let api = &self.apis[(id - 1) as usize];
        let deadline = Instant::now() + super::timing::START;
        loop {
            if let Ok(response) = api.client.get(format!("{}{}", api.internal, wire::paths::READYZ)).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} at {} never became ready: {}",
                api.internal,
                self.log_text(id)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What node `id` logged so far.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
