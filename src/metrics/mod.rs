//! Prometheus metrics (SPEC.md §7), one registry per node (in-process test clusters
//! keep theirs apart): what the request path counts as it goes (`Metrics`, fed by
//! `api::observe`), and what is read from the node's state at each scrape
//! (`scrape`: per-ISPB delivery state, shards, storage, the process). Rendered by
//! `GET /metrics` on the internal listener in the Prometheus text format.
//!
//! Names follow Prometheus conventions: `pixstream_` prefix, `_total` counters,
//! `_seconds` and `_bytes` units.

mod process;
mod scrape;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use scrape::MAX_ISPB_SERIES;

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

/// The counters and histograms the request path and the services feed.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub problems: Family<ProblemLabels, Counter>,
    /// Streams closed by idle expiry.
    pub expiries: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pixstream");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let problems = Family::<ProblemLabels, Counter>::default();
        let expiries = Counter::default();
        registry.register("requests", "Requests answered, by route and status", requests.clone());
        registry.register("request_duration_seconds", "Time to answer, by route and outcome", latency.clone());
        registry.register("problems", "Error answers by problem code", problems.clone());
        registry.register("stream_expiries", "Streams closed by idle expiry", expiries.clone());
        Metrics { registry, requests, latency, problems, expiries }
    }
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
