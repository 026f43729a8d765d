//! What `top` takes from one node's exposition: the node's own counters and gauges
//! and, per ISPB this node reports (the tenants of the shards it leads), the delivery
//! gauges and the pull counter. A metric the node does not export is `None` (shown
//! as `-`); a labelled counter it declares but has not incremented yet is zero.

use std::collections::BTreeMap;
use std::time::Instant;

use super::exposition::Exposition;

/// Causes of `pixstream_throttled_total`, in the order they are shown.
pub const THROTTLE_CAUSES: [&str; 4] = ["rate_limit", "stream_slots", "shed", "back_pressure"];

/// One scrape of one node.
#[derive(Clone, Debug)]
pub struct NodeReading {
    /// When the answer arrived: rates divide by the time between two of them.
    pub at: Instant,
    pub totals: NodeTotals,
    pub ispbs: BTreeMap<String, IspbReading>,
}

/// Node-wide values (counters are cumulative).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeTotals {
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub in_flight: Option<f64>,
    pub requests: Option<f64>,
    /// Answered `stream_start` and `stream_next` requests.
    pub pulls: Option<f64>,
    pub shed: Option<f64>,
    /// Per cause; `None` when the node has no throttle counter.
    pub throttled: Option<BTreeMap<String, f64>>,
    pub led_shards: usize,
    pub hosted_shards: usize,
    /// Hosted shards without a known leader.
    pub leaderless_shards: Option<usize>,
    /// Unconfirmed messages over every tenant this node leads.
    pub backlog: Option<f64>,
}

/// One ISPB as its shard's leader reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IspbReading {
    pub backlog: f64,
    pub watermark: Option<f64>,
    /// Cumulative pulls.
    pub pulls: Option<f64>,
    pub oldest_age_seconds: Option<f64>,
    pub open_streams: Option<f64>,
    pub stream_slots: Option<f64>,
    pub back_pressure: Option<bool>,
}

impl NodeReading {
    /// The reading of `exposition`, taken at `at`.
    pub fn new(exposition: &Exposition, at: Instant) -> NodeReading {
        NodeReading { at, totals: totals(exposition), ispbs: ispbs(exposition) }
    }
}

fn totals(metrics: &Exposition) -> NodeTotals {
    let leaders: Vec<f64> = metrics.series("pixstream_shard_leader").map(|s| s.value).collect();
    NodeTotals {
        cpu_seconds: metrics
            .value("pixstream_process_cpu_seconds_total")
            .or_else(|| metrics.value("pixstream_process_cpu_seconds")),
        rss_bytes: metrics.value("pixstream_process_resident_memory_bytes"),
        in_flight: metrics.value("pixstream_in_flight_requests"),
        requests: counter_sum(metrics, "pixstream_requests_total"),
        pulls: pulls(metrics),
        shed: counter_sum(metrics, "pixstream_shed_requests_total"),
        throttled: throttled(metrics),
        led_shards: leaders.iter().filter(|v| **v == 1.0).count(),
        hosted_shards: leaders.len(),
        leaderless_shards: known(metrics, "pixstream_shard_leader_known")
            .then(|| metrics.series("pixstream_shard_leader_known").filter(|s| s.value == 0.0).count()),
        backlog: metrics.value("pixstream_backlog"),
    }
}

/// Whether the node exports `name`: declared, or with a series.
fn known(metrics: &Exposition, name: &str) -> bool {
    metrics.declares(name) || metrics.series(name).next().is_some()
}

/// The sum of a counter's series: zero when declared without series, `None` when unknown.
fn counter_sum(metrics: &Exposition, name: &str) -> Option<f64> {
    metrics.sum(name).or_else(|| metrics.declares(name).then_some(0.0))
}

fn pulls(metrics: &Exposition) -> Option<f64> {
    let name = "pixstream_requests_total";
    let pulls = metrics.series(name).filter(|s| matches!(s.label("route"), Some("stream_start" | "stream_next")));
    counter_sum(metrics, name).map(|_| pulls.map(|s| s.value).sum())
}

fn throttled(metrics: &Exposition) -> Option<BTreeMap<String, f64>> {
    let name = "pixstream_throttled_total";
    counter_sum(metrics, name)?;
    let mut causes: BTreeMap<String, f64> = THROTTLE_CAUSES.iter().map(|c| (c.to_string(), 0.0)).collect();
    for sample in metrics.series(name) {
        *causes.entry(sample.label("cause").unwrap_or("").to_owned()).or_default() += sample.value;
    }
    Some(causes)
}

/// Every ISPB with a backlog series, with what else the node says about it.
fn ispbs(metrics: &Exposition) -> BTreeMap<String, IspbReading> {
    let per_ispb = |name: &str| -> BTreeMap<String, f64> {
        metrics.series(name).filter_map(|s| Some((s.label("ispb")?.to_owned(), s.value))).collect()
    };
    let watermarks = per_ispb("pixstream_ispb_watermark");
    let pulls = per_ispb("pixstream_ispb_pulls_total");
    let pulls_declared = known(metrics, "pixstream_ispb_pulls_total");
    let ages = per_ispb("pixstream_ispb_oldest_unconfirmed_age_seconds");
    let streams = per_ispb("pixstream_ispb_open_streams");
    let slots = per_ispb("pixstream_ispb_stream_slots");
    let pressure = per_ispb("pixstream_ispb_back_pressure");
    let reading = |ispb: &String, backlog: f64| IspbReading {
        backlog,
        watermark: watermarks.get(ispb).copied(),
        pulls: pulls.get(ispb).copied().or(pulls_declared.then_some(0.0)),
        oldest_age_seconds: ages.get(ispb).copied(),
        open_streams: streams.get(ispb).copied(),
        stream_slots: slots.get(ispb).copied(),
        back_pressure: pressure.get(ispb).map(|v| *v != 0.0),
    };
    per_ispb("pixstream_ispb_backlog")
        .into_iter()
        .map(|(ispb, backlog)| (ispb.clone(), reading(&ispb, backlog)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> NodeReading {
        NodeReading::new(&Exposition::parse(text).expect("parses"), Instant::now())
    }

    #[test]
    fn an_exposition_without_the_newer_metrics_reads_as_unknown() {
        let reading = read(
            "pixstream_process_cpu_seconds 2.5\n\
             pixstream_shard_leader{shard=\"0\"} 1\n\
             pixstream_shard_leader{shard=\"1\"} 0\n\
             pixstream_requests_total{route=\"stream_next\",status=\"200\"} 4\n\
             pixstream_requests_total{route=\"append\",status=\"201\"} 6\n\
             pixstream_ispb_backlog{ispb=\"32074986\"} 3\n\
             pixstream_ispb_watermark{ispb=\"32074986\"} 8\n",
        );
        let totals = &reading.totals;
        assert_eq!(totals.cpu_seconds, Some(2.5), "the old CPU name is read");
        assert_eq!((totals.led_shards, totals.hosted_shards, totals.leaderless_shards), (1, 2, None));
        assert_eq!((totals.requests, totals.pulls), (Some(10.0), Some(4.0)));
        assert_eq!((totals.throttled.clone(), totals.shed, totals.rss_bytes), (None, None, None));
        let ispb = &reading.ispbs["32074986"];
        assert_eq!(
            (ispb.backlog, ispb.watermark, ispb.pulls, ispb.stream_slots, ispb.back_pressure),
            (3.0, Some(8.0), None, None, None)
        );
    }

    #[test]
    fn declared_counters_without_series_are_zero() {
        let reading = read(
            "# TYPE pixstream_throttled_total counter\n\
             # TYPE pixstream_ispb_pulls_total counter\n\
             pixstream_process_cpu_seconds_total 1\n\
             pixstream_shard_leader_known{shard=\"0\"} 0\n\
             pixstream_ispb_backlog{ispb=\"99999A03\"} 0\n\
             pixstream_ispb_stream_slots{ispb=\"99999A03\"} 6\n\
             pixstream_ispb_back_pressure{ispb=\"99999A03\"} 1\n",
        );
        let throttled = reading.totals.throttled.as_ref().expect("declared");
        assert!(THROTTLE_CAUSES.iter().all(|c| throttled[*c] == 0.0), "{throttled:?}");
        assert_eq!(reading.totals.leaderless_shards, Some(1));
        let ispb = &reading.ispbs["99999A03"];
        assert_eq!((ispb.pulls, ispb.stream_slots, ispb.back_pressure), (Some(0.0), Some(6.0), Some(true)));
    }
}
