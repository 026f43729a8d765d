//! A real Prometheus (Debian's `prometheus` package; scripts/check installs it)
//! scraping one test node every second and evaluating the shipped alert rules
//! (`ops/prometheus/alerts.yml`) every second, so a test can ask which alerts a
//! real condition raised. Its data lives in a temp dir; the process is killed when
//! the value is dropped.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use super::free_port;

/// A running Prometheus scraping one node.
pub struct Prometheus {
    url: String,
    client: reqwest::Client,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// An alert Prometheus holds: its state (`pending` while the expression is true but
/// its `for` has not passed, then `firing`), its labels and the value that crossed.
#[derive(Debug, Clone)]
pub struct ActiveAlert {
    pub state: String,
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus scraping `internal_url`'s `/metrics` (job `pixstream`) and
    /// waits until the first scrape succeeded.
    pub async fn scraping(internal_url: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = internal_url.trim_start_matches("http://");
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: pixstream\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus runs (apt-get install prometheus; scripts/check installs it)");
        let prometheus = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _child: child,
            _dir: dir,
        };
        prometheus.wait_for_first_scrape().await;
        prometheus
    }

    async fn wait_for_first_scrape(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.query("up{job=\"pixstream\"}").await.is_some_and(|v| v == 1.0) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "Prometheus never scraped the node");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of an instant query returning one sample, if it does.
    pub async fn query(&self, expr: &str) -> Option<f64> {
        let answer =
            self.client.get(format!("{}/api/v1/query", self.url)).query(&[("query", expr)]).send().await.ok()?;
        let body: Value = serde_json::from_str(&answer.text().await.ok()?).ok()?;
        body["data"]["result"].as_array()?.first()?["value"][1].as_str()?.parse().ok()
    }

    /// The alerts named `name` that Prometheus holds now (pending or firing).
    pub async fn active(&self, name: &str) -> Vec<ActiveAlert> {
        let Ok(answer) = self.client.get(format!("{}/api/v1/alerts", self.url)).send().await else {
            return Vec::new();
        };
        let body: Value = serde_json::from_str(&answer.text().await.unwrap_or_default()).unwrap_or_default();
        let alerts = body["data"]["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .into_iter()
            .filter(|alert| alert["labels"]["alertname"] == name)
            .map(|alert| ActiveAlert {
                state: alert["state"].as_str().unwrap_or_default().to_owned(),
                labels: alert["labels"].as_object().cloned().unwrap_or_default(),
                value: alert["value"].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
            })
            .collect()
    }

    /// Waits up to `within` for the alert `name` to be raised (pending or firing).
    pub async fn wait_raised(&self, name: &str, within: Duration) -> ActiveAlert {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(alert) = self.active(name).await.into_iter().next() {
                return alert;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} was not raised within {within:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
