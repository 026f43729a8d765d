//! One frame of `top`, computed from each node's previous and current reading:
//! per-node rates (a counter's increase over the time between the two answers; a
//! counter that went down was reset, so its increase is its new value), and the
//! ISPB table merged over the nodes. Per-ISPB series come only from the leader of
//! the ISPB's shard, so rows are summed over nodes; rates are taken per node first,
//! so a leadership move between two scrapes never reads as a negative rate. Lag is
//! the largest age, slots and back-pressure the largest value any node reports.

use std::collections::BTreeMap;

use super::reading::{IspbReading, NodeReading, NodeTotals};

/// What the screen shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub nodes: Vec<NodeRow>,
    /// Every ISPB reported, largest backlog first.
    pub ispbs: Vec<IspbRow>,
}

/// One node: its figures, or why it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    pub url: String,
    pub stats: Result<NodeStats, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeStats {
    pub led_shards: usize,
    pub hosted_shards: usize,
    pub leaderless_shards: Option<usize>,
    pub in_flight: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub pulls_per_s: Option<f64>,
    /// Per cause; `None` when the node has no throttle counter or no previous reading.
    pub throttled_per_s: Option<Vec<(String, f64)>>,
    pub shed_per_s: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub backlog: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct IspbRow {
    pub ispb: String,
    pub backlog: f64,
    pub pulls_per_s: Option<f64>,
    pub confirmed_per_s: Option<f64>,
    pub lag_seconds: Option<f64>,
    pub open_streams: Option<f64>,
    pub stream_slots: Option<f64>,
    pub back_pressure: Option<bool>,
}

/// A node's scrape: the reading, or the error that stood in its way.
pub type Scraped = Result<NodeReading, String>;

/// The frame of `current` (one per URL, in order) after `previous` (the last good
/// reading of each URL, if any).
pub fn frame(urls: &[String], previous: &[Option<NodeReading>], current: &[Scraped]) -> Frame {
    let before = |i: usize| previous.get(i).and_then(Option::as_ref);
    let nodes = urls
        .iter()
        .zip(current)
        .enumerate()
        .map(|(i, (url, now))| NodeRow {
            url: url.clone(),
            stats: now.as_ref().map(|n| node_stats(before(i), n)).map_err(Clone::clone),
        })
        .collect();
    let mut merged: BTreeMap<String, IspbRow> = BTreeMap::new();
    for (i, now) in current.iter().enumerate() {
        let Ok(now) = now else { continue };
        for (ispb, reading) in &now.ispbs {
            let row = ispb_row(ispb, before(i).map(|b| (b, now)), reading);
            let merged_row =
                merged.entry(ispb.clone()).or_insert_with(|| IspbRow { ispb: ispb.clone(), ..IspbRow::default() });
            add(merged_row, &row);
        }
    }
    let mut ispbs: Vec<IspbRow> = merged.into_values().collect();
    ispbs.sort_by(|a, b| b.backlog.total_cmp(&a.backlog).then_with(|| a.ispb.cmp(&b.ispb)));
    Frame { nodes, ispbs }
}

/// A counter's increase per second between two readings `seconds` apart.
pub fn per_second(before: Option<f64>, now: Option<f64>, seconds: f64) -> Option<f64> {
    let (before, now) = (before?, now?);
    let increase = if now >= before { now - before } else { now };
    (seconds > 0.0).then(|| increase / seconds)
}

fn node_stats(before: Option<&NodeReading>, now: &NodeReading) -> NodeStats {
    let seconds = before.map_or(0.0, |b| now.at.saturating_duration_since(b.at).as_secs_f64());
    let empty = NodeTotals::default();
    let (then, totals) = (before.map_or(&empty, |b| &b.totals), &now.totals);
    let rate = |pick: fn(&NodeTotals) -> Option<f64>| per_second(pick(then), pick(totals), seconds);
    NodeStats {
        led_shards: totals.led_shards,
        hosted_shards: totals.hosted_shards,
        leaderless_shards: totals.leaderless_shards,
        in_flight: totals.in_flight,
        requests_per_s: rate(|t| t.requests),
        pulls_per_s: rate(|t| t.pulls),
        throttled_per_s: throttled_rates(then, totals, seconds),
        shed_per_s: rate(|t| t.shed),
        cpu_percent: rate(|t| t.cpu_seconds).map(|share| share * 100.0),
        rss_bytes: totals.rss_bytes,
        backlog: totals.backlog,
    }
}

fn throttled_rates(then: &NodeTotals, now: &NodeTotals, seconds: f64) -> Option<Vec<(String, f64)>> {
    let (then, now) = (then.throttled.as_ref()?, now.throttled.as_ref()?);
    now.iter()
        .map(|(cause, value)| {
            Some((cause.clone(), per_second(Some(then.get(cause).copied().unwrap_or(0.0)), Some(*value), seconds)?))
        })
        .collect()
}

/// One node's view of one ISPB; rates when the node reported it the time before too.
fn ispb_row(ispb: &str, readings: Option<(&NodeReading, &NodeReading)>, now: &IspbReading) -> IspbRow {
    let then = readings.and_then(|(before, _)| before.ispbs.get(ispb));
    let seconds = readings.map_or(0.0, |(before, now)| now.at.saturating_duration_since(before.at).as_secs_f64());
    IspbRow {
        ispb: ispb.to_owned(),
        backlog: now.backlog,
        pulls_per_s: per_second(then.and_then(|t| t.pulls), now.pulls, seconds),
        confirmed_per_s: per_second(then.and_then(|t| t.watermark), now.watermark, seconds),
        lag_seconds: now.oldest_age_seconds,
        open_streams: now.open_streams,
        stream_slots: now.stream_slots,
        back_pressure: now.back_pressure,
    }
}

/// Folds one node's row into the merged row of its ISPB.
fn add(into: &mut IspbRow, row: &IspbRow) {
    into.backlog += row.backlog;
    into.pulls_per_s = combine(into.pulls_per_s, row.pulls_per_s, |a, b| a + b);
    into.confirmed_per_s = combine(into.confirmed_per_s, row.confirmed_per_s, |a, b| a + b);
    into.open_streams = combine(into.open_streams, row.open_streams, |a, b| a + b);
    into.lag_seconds = combine(into.lag_seconds, row.lag_seconds, f64::max);
    into.stream_slots = combine(into.stream_slots, row.stream_slots, f64::max);
    into.back_pressure = combine(into.back_pressure, row.back_pressure, |a, b| a || b);
}

fn combine<T>(a: Option<T>, b: Option<T>, f: impl FnOnce(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn ispb(backlog: f64, watermark: f64, pulls: Option<f64>) -> IspbReading {
        IspbReading {
            backlog,
            watermark: Some(watermark),
            pulls,
            oldest_age_seconds: Some(backlog / 10.0),
            open_streams: Some(1.0),
            stream_slots: Some(6.0),
            back_pressure: None,
        }
    }

    fn node(at: Instant, cpu: f64, requests: f64, ispbs: &[(&str, IspbReading)]) -> NodeReading {
        let totals = NodeTotals {
            cpu_seconds: Some(cpu),
            requests: Some(requests),
            pulls: Some(requests / 2.0),
            led_shards: 1,
            hosted_shards: 3,
            ..NodeTotals::default()
        };
        NodeReading { at, totals, ispbs: ispbs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
    }

    #[test]
    fn rates_divide_the_increase_by_the_time_between_readings() {
        assert_eq!(per_second(Some(10.0), Some(30.0), 2.0), Some(10.0));
        assert_eq!(per_second(Some(30.0), Some(4.0), 2.0), Some(2.0), "a reset counter restarts at zero");
        assert_eq!(per_second(None, Some(4.0), 2.0), None, "no previous reading, no rate");
        assert_eq!(per_second(Some(1.0), Some(4.0), 0.0), None);
    }

    #[test]
    fn node_rates_come_from_the_previous_reading_and_the_first_frame_has_none() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let urls = vec!["http://a".to_owned()];
        let first = frame(&urls, &[None], &[Ok(node(t0, 1.0, 10.0, &[]))]);
        let stats = first.nodes[0].stats.as_ref().expect("up");
        assert_eq!((stats.requests_per_s, stats.cpu_percent), (None, None));
        assert_eq!((stats.led_shards, stats.hosted_shards), (1, 3));

        let second = frame(&urls, &[Some(node(t0, 1.0, 10.0, &[]))], &[Ok(node(t1, 1.5, 30.0, &[]))]);
        let stats = second.nodes[0].stats.as_ref().expect("up");
        assert_eq!(stats.requests_per_s, Some(10.0));
        assert_eq!(stats.pulls_per_s, Some(5.0));
        assert_eq!(stats.cpu_percent, Some(25.0), "0.5 s of CPU in 2 s");
        assert_eq!(stats.throttled_per_s, None, "no throttle counter on these nodes");
    }

    #[test]
    fn ispbs_are_summed_over_their_leaders_and_sorted_by_backlog() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let urls = vec!["http://a".to_owned(), "http://b".to_owned(), "http://c".to_owned()];
        let before = [
            Some(node(t0, 0.0, 0.0, &[("11111111", ispb(5.0, 100.0, Some(40.0)))])),
            Some(node(t0, 0.0, 0.0, &[("22222222", ispb(1.0, 7.0, None)), ("11111111", ispb(2.0, 3.0, Some(1.0)))])),
            None,
        ];
        let now = [
            Ok(node(t1, 0.0, 0.0, &[("11111111", ispb(4.0, 110.0, Some(45.0)))])),
            Ok(node(t1, 0.0, 0.0, &[("22222222", ispb(9.0, 9.0, None)), ("11111111", ispb(3.0, 5.0, Some(2.0)))])),
            Err("connection refused".to_owned()),
        ];
        let frame = frame(&urls, &before, &now);
        assert_eq!(frame.nodes[2].stats, Err("connection refused".to_owned()), "the unreachable node is named");
        let rows: Vec<(&str, f64)> = frame.ispbs.iter().map(|r| (r.ispb.as_str(), r.backlog)).collect();
        assert_eq!(rows, vec![("22222222", 9.0), ("11111111", 7.0)], "summed, largest first");
        let split = &frame.ispbs[1];
        assert_eq!(split.pulls_per_s, Some(6.0), "5/s + 1/s");
        assert_eq!(split.confirmed_per_s, Some(12.0), "10/s + 2/s");
        assert_eq!(split.open_streams, Some(2.0));
        assert_eq!(split.stream_slots, Some(6.0), "the setting, not a sum");
        assert_eq!(split.lag_seconds, Some(0.4), "the oldest of the two");
        assert_eq!(frame.ispbs[0].pulls_per_s, None, "no pull counter: unknown");
        assert_eq!(frame.ispbs[0].confirmed_per_s, Some(2.0));
    }

    #[test]
    fn an_ispb_new_on_a_node_has_no_rate_there() {
        let t0 = Instant::now();
        let urls = vec!["http://a".to_owned()];
        let before = [Some(node(t0, 0.0, 0.0, &[]))];
        let now = [Ok(node(t0 + Duration::from_secs(1), 0.0, 0.0, &[("11111111", ispb(3.0, 50.0, Some(9.0)))]))];
        let row = &frame(&urls, &before, &now).ispbs[0];
        assert_eq!((row.backlog, row.pulls_per_s, row.confirmed_per_s), (3.0, None, None));
    }

    #[test]
    fn throttle_rates_by_cause() {
        let t0 = Instant::now();
        let with = |at, shed: f64| {
            let mut reading = node(at, 0.0, 0.0, &[]);
            reading.totals.throttled = Some([("rate_limit".to_owned(), 0.0), ("shed".to_owned(), shed)].into());
            reading
        };
        let frame =
            frame(&["http://a".to_owned()], &[Some(with(t0, 2.0))], &[Ok(with(t0 + Duration::from_secs(2), 8.0))]);
        let stats = frame.nodes[0].stats.as_ref().expect("up");
        assert_eq!(stats.throttled_per_s, Some(vec![("rate_limit".to_owned(), 0.0), ("shed".to_owned(), 3.0)]));
    }
}
