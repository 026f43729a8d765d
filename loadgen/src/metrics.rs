//! Latency histograms (HdrHistogram, microseconds) and counters, sharded so that
//! thousands of pullers rarely meet on one lock. Each shard keeps the totals of the
//! measuring window and the figures of the current progress interval. Latencies are
//! of served requests only (pulls answered 200/204, appends 200/201); every answer,
//! served or not, is also counted by its class (`answers`).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::answers::{self, Counts};

/// Shards of the recorders (tasks pick one by their index). Each holds ten
/// histograms of ~190 KB; a lock is held for about a microsecond per record.
const SHARDS: usize = 8;
/// Highest latency tracked: one hour in µs (larger values are clamped). End-to-end
/// latency of a large preload can take minutes.
const MAX_MICROS: u64 = 3_600_000_000;

/// Latencies and counts of a span of time.
#[derive(Clone)]
pub struct Recorder {
    /// Pulls (200) that returned messages.
    pub pull_with_messages: Histogram<u64>,
    /// The subset of `pull_with_messages` that found messages ready: one of them was
    /// acknowledged to the producer before the pull was sent, so the server owed an
    /// answer without long-poll waiting.
    pub pull_ready: Histogram<u64>,
    /// Pulls answered 204.
    pub pull_empty: Histogram<u64>,
    /// Append (producer POST sent) → first delivery.
    pub end_to_end: Histogram<u64>,
    /// Producer POST round trips.
    pub produce: Histogram<u64>,
    /// Messages received (first deliveries only).
    pub delivered: u64,
    /// Messages received again.
    pub redelivered: u64,
    /// Messages acknowledged by the producer API.
    pub produced: u64,
    /// Producer requests acknowledged.
    pub posts: u64,
    /// Failed requests by `METHOD status code` (or `METHOD timeout` …).
    pub errors: BTreeMap<String, u64>,
    /// Every answer the pullers got (stream/start, next, DELETE), by class.
    pub pull_answers: Counts,
    /// Every answer the producers got (each attempt), by class.
    pub produce_answers: Counts,
}

/// Who sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Puller,
    Producer,
}

impl Recorder {
    pub fn new() -> Recorder {
        let histogram = || Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds");
        Recorder {
            pull_with_messages: histogram(),
            pull_ready: histogram(),
            pull_empty: histogram(),
            end_to_end: histogram(),
            produce: histogram(),
            delivered: 0,
            redelivered: 0,
            produced: 0,
            posts: 0,
            errors: BTreeMap::new(),
            pull_answers: Counts::new(),
            produce_answers: Counts::new(),
        }
    }

    /// Pulls answered 200 or 204.
    pub fn pulls(&self) -> u64 {
        self.pull_with_messages.len() + self.pull_empty.len()
    }

    /// Failed requests of every kind.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    fn add(&mut self, other: &Recorder) {
        // Same bounds everywhere: adding cannot fail.
        let _ = self.pull_with_messages.add(&other.pull_with_messages);
        let _ = self.pull_ready.add(&other.pull_ready);
        let _ = self.pull_empty.add(&other.pull_empty);
        let _ = self.end_to_end.add(&other.end_to_end);
        let _ = self.produce.add(&other.produce);
        self.delivered += other.delivered;
        self.redelivered += other.redelivered;
        self.produced += other.produced;
        self.posts += other.posts;
        for (mine, theirs) in [
            (&mut self.errors, &other.errors),
            (&mut self.pull_answers, &other.pull_answers),
            (&mut self.produce_answers, &other.produce_answers),
        ] {
            for (what, n) in theirs {
                *mine.entry(what.clone()).or_default() += n;
            }
        }
    }

    fn reset(&mut self) {
        self.pull_with_messages.reset();
        self.pull_ready.reset();
        self.pull_empty.reset();
        self.end_to_end.reset();
        self.produce.reset();
        self.delivered = 0;
        self.redelivered = 0;
        self.produced = 0;
        self.posts = 0;
        self.errors.clear();
        self.pull_answers.clear();
        self.produce_answers.clear();
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// One shard: the measuring window's totals and the current progress interval.
struct Shard {
    total: Recorder,
    interval: Recorder,
}

/// Every recorder of a run.
pub struct Metrics {
    shards: Vec<Mutex<Shard>>,
}

/// What one pull answer adds.
pub struct PullSample<'a> {
    pub latency_us: u64,
    /// Messages in the answer (0 for a 204).
    pub first: u32,
    pub redelivered: u32,
    pub with_messages: bool,
    /// Messages were ready when the pull was sent (see `Recorder::pull_ready`).
    pub ready: bool,
    pub end_to_end_us: &'a [u64],
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard { total: Recorder::new(), interval: Recorder::new() }))
                .collect(),
        }
    }

    /// Records a 200/204 pull answer; `measured` when it completed inside the window.
    pub fn pull(&self, task: usize, sample: &PullSample<'_>, measured: bool) {
        let mut shard = self.shards[task % SHARDS].lock();
        let shard = &mut *shard;
        let record = |r: &mut Recorder| {
            let histogram = if sample.with_messages { &mut r.pull_with_messages } else { &mut r.pull_empty };
            histogram.saturating_record(sample.latency_us.max(1));
            if sample.with_messages && sample.ready {
                r.pull_ready.saturating_record(sample.latency_us.max(1));
            }
            r.delivered += u64::from(sample.first);
            r.redelivered += u64::from(sample.redelivered);
            for e2e in sample.end_to_end_us {
                r.end_to_end.saturating_record((*e2e).max(1));
            }
        };
        record(&mut shard.interval);
        if measured {
            record(&mut shard.total);
        }
    }

    /// Records an acknowledged producer request of `messages` messages, and the
    /// end-to-end latencies of those already delivered.
    pub fn produce(&self, task: usize, latency_us: u64, messages: u64, end_to_end_us: &[u64], measured: bool) {
        let mut shard = self.shards[task % SHARDS].lock();
        let shard = &mut *shard;
        let record = |r: &mut Recorder| {
            r.produce.saturating_record(latency_us.max(1));
            r.produced += messages;
            r.posts += 1;
            for e2e in end_to_end_us {
                r.end_to_end.saturating_record((*e2e).max(1));
            }
        };
        record(&mut shard.interval);
        if measured {
            record(&mut shard.total);
        }
    }

    /// Counts a failed request, e.g. `GET 409` or `POST timeout`. Errors count
    /// whenever they happen, inside the measuring window or not.
    pub fn error(&self, task: usize, what: &str) {
        let mut shard = self.shards[task % SHARDS].lock();
        let count = |r: &mut Recorder| match r.errors.get_mut(what) {
            Some(n) => *n += 1,
            None => {
                r.errors.insert(what.to_owned(), 1);
            }
        };
        count(&mut shard.interval);
        count(&mut shard.total);
    }

    /// Counts one answer (or failure) of `role` by its class `label`; `measured` when
    /// it came inside the window.
    pub fn answer(&self, task: usize, role: Role, label: &str, measured: bool) {
        let mut shard = self.shards[task % SHARDS].lock();
        let shard = &mut *shard;
        for (recorder, counted) in [(&mut shard.interval, true), (&mut shard.total, measured)] {
            if counted {
                let counts = match role {
                    Role::Puller => &mut recorder.pull_answers,
                    Role::Producer => &mut recorder.produce_answers,
                };
                answers::count(counts, label);
            }
        }
    }

    /// The figures of the interval since the last call, and a fresh interval.
    pub fn take_interval(&self) -> Recorder {
        let mut out = Recorder::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            out.add(&shard.interval);
            shard.interval.reset();
        }
        out
    }

    /// The totals of the measuring window.
    pub fn totals(&self) -> Recorder {
        let mut out = Recorder::new();
        for shard in &self.shards {
            out.add(&shard.lock().total);
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(histogram: &Histogram<u64>) -> Summary {
        if histogram.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_right_histograms_and_windows() {
        let metrics = Metrics::new();
        metrics.pull(
            0,
            &PullSample {
                latency_us: 2_000,
                first: 3,
                redelivered: 1,
                with_messages: true,
                ready: true,
                end_to_end_us: &[5_000],
            },
            true,
        );
        metrics.pull(
            1,
            &PullSample {
                latency_us: 300_000,
                first: 0,
                redelivered: 0,
                with_messages: false,
                ready: false,
                end_to_end_us: &[],
            },
            false,
        );
        metrics.produce(2, 1_000, 10, &[4_000], true);
        metrics.error(3, "GET 409");
        metrics.answer(4, Role::Puller, "429 rateLimited", true);
        metrics.answer(5, Role::Puller, "429 rateLimited", false);
        metrics.answer(6, Role::Producer, "503 unavailable", true);
        let totals = metrics.totals();
        assert_eq!(
            (totals.pulls(), totals.delivered, totals.redelivered, totals.produced, totals.posts),
            (1, 3, 1, 10, 1)
        );
        assert_eq!(totals.end_to_end.len(), 2);
        assert_eq!(totals.pull_ready.len(), 1);
        assert_eq!(totals.errors.get("GET 409"), Some(&1));
        assert_eq!(totals.pull_answers.get("429 rateLimited"), Some(&1), "only answers inside the window");
        assert_eq!(totals.produce_answers.get("503 unavailable"), Some(&1));
        let interval = metrics.take_interval();
        assert_eq!(interval.pulls(), 2);
        assert_eq!(interval.pull_answers.get("429 rateLimited"), Some(&2));
        assert_eq!(metrics.take_interval().pulls(), 0, "the interval restarts");
        let summary = Summary::of(&totals.pull_with_messages);
        assert_eq!(summary.count, 1);
        assert!((summary.p50_ms - 2.0).abs() < 0.01, "{summary:?}");
        assert_eq!(Summary::of(&totals.pull_empty), Summary::default());
    }
}
