//! `ServeProcess`: the real `pixstream serve` binary as a child process on loopback
//! ports, its stderr (the log) in a file beside its data dir, SIGKILLed when
//! dropped (also on panic).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
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
