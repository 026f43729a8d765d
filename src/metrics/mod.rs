//! Prometheus metrics (SPEC.md §7), one registry per node (in-process test clusters
//! keep theirs apart): what the request path counts as it goes (`Metrics`, fed by
//! `api::observe`; cursor churn fed by the pull service, `churn`; pulls per ISPB,
//! `ispb_pulls`), and what is read from the node's state at each scrape (`scrape`:
//! per-ISPB delivery state in `tenants`, Raft groups in `shards`, RocksDB and the
//! disk in `disk`, the process in `process`). Rendered by `GET /metrics` on the
//! internal listener in the Prometheus text format. docs/observability.md lists
//! every series.
//!
//! Names follow Prometheus conventions: `pixstream_` prefix, `_total` counters,
//! `_seconds` and `_bytes` units.

mod churn;
mod disk;
mod ispb_pulls;
mod process;
mod scrape;
mod shards;
mod tenants;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use churn::Churn;
pub use ispb_pulls::IspbPulls;
pub use tenants::MAX_ISPB_SERIES;

use crate::app::App;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

/// Labels of a latency histogram: the route and what the answer was (`messages`,
/// `empty` for a 204, `error`, or `ok`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub route: &'static str,
    pub outcome: &'static str,
}

/// Labels of the problem counter: the RFC 7807 code (`invalidCursor`, `rateLimited`,
/// `tooManyStreams`, `forbidden`, `unavailable`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemLabels {
    pub code: &'static str,
}

/// Labels of the throttling counter: `rate_limit`, `stream_slots`, `shed` or
/// `back_pressure` (`ApiError::throttle_cause`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    pub cause: &'static str,
}

/// Every `cause` of `pixstream_throttled_total` (`ApiError::throttle_cause`).
pub const THROTTLE_CAUSES: [&str; 4] = ["rate_limit", "stream_slots", "shed", "back_pressure"];
/// Problem codes the shipped alerts and dashboard read.
const ALERTED_PROBLEMS: [&str; 6] =
    ["invalidCursor", "rateLimited", "tooManyStreams", "unavailable", "forbidden", "unauthorized"];

/// The counters and histograms the request path and the services feed.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub problems: Family<ProblemLabels, Counter>,
    pub throttled: Family<ThrottleLabels, Counter>,
    /// Redeliveries, expiries, previous-token retries (shared with the pull service).
    pub churn: Churn,
    /// Answered pulls by ISPB.
    pub pulls: IspbPulls,
}

impl Metrics {
    /// A node's metrics; `churn` is the pull service's.
    pub fn new(churn: Churn) -> Metrics {
        let mut registry = Registry::with_prefix("pixstream");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let problems = Family::<ProblemLabels, Counter>::default();
        let throttled = Family::<ThrottleLabels, Counter>::default();
        registry.register("requests", "Requests answered, by route and status", requests.clone());
        registry.register("request_duration_seconds", "Time to answer, by route and outcome", latency.clone());
        registry.register("problems", "Error answers by problem code", problems.clone());
        registry.register("throttled", "Requests refused to protect the node or a tenant, by cause", throttled.clone());
        // The series alerts read exist from the start at 0, so the first refusals
        // after a node starts count as an increase.
        for cause in THROTTLE_CAUSES {
            let _ = throttled.get_or_create(&ThrottleLabels { cause });
        }
        for code in ALERTED_PROBLEMS {
            let _ = problems.get_or_create(&ProblemLabels { code });
        }
        churn.register(&mut registry);
        registry.register("build_info", "1, labelled with the running version", build_info());
        Metrics { registry, requests, latency, problems, throttled, churn, pulls: IspbPulls::default() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

fn build_info() -> Family<VersionLabels, prometheus_client::metrics::gauge::Gauge> {
    let info = Family::<VersionLabels, prometheus_client::metrics::gauge::Gauge>::default();
    info.get_or_create(&VersionLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
    info
}

/// 0.5 ms to ~33 s: the fast pulls and the whole long poll.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 17))
}

/// `Content-Type` of the exposition: the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition of `app`'s metrics in the Prometheus text format.
pub fn render(app: &App) -> String {
    let mut text = String::new();
    let mut state = Registry::with_prefix("pixstream");
    scrape::register_state(app, &mut state);
    let _ = prometheus_client::encoding::text::encode_registry(&mut text, &app.metrics.registry);
    let _ = encode(&mut text, &state);
    to_prometheus_text(&text)
}

/// prometheus-client writes OpenMetrics: a counter family is described as `name`
/// and sampled as `name_total`, and the text ends with `# EOF`. The Prometheus text
/// format (what `promtool check metrics` and every scraper read) describes it as
/// `name_total` and has no end marker.
fn to_prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        open_metrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut text = String::with_capacity(open_metrics.len() + 64);
    for line in open_metrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(described.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn counter_families_are_described_by_their_sample_name() {
        let open_metrics = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total 3\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n";
        assert_eq!(
            super::to_prometheus_text(open_metrics),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total 3\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }
}
