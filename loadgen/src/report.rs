//! The report of a run: setup, rates, latency percentiles (of served requests),
//! answers by class with the shed share, the flood's answers, errors, the ledger's
//! account and the verdict — as text (`Display`) and as JSON (`Serialize`) — and the
//! progress line printed while it runs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::answers::{AnswerSummary, RATE_LIMITED};
use crate::cost::{Cost, Floor, Reading};
use crate::flood::FloodReport;
use crate::ledger::LedgerReport;
use crate::metrics::{Recorder, Summary};
use crate::shared::Shared;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `duration`, `duration+drain` or `drain`.
    pub mode: &'static str,
    pub setup: Setup,
    /// Length of the measuring window (after warmup; in drain mode, until drained).
    pub measured_secs: f64,
    pub pulls: Pulls,
    pub messages: Messages,
    pub latency: Latencies,
    /// What the measured ISPBs' requests got back inside the window, by class.
    pub answers: Answers,
    /// The flood of `--flood-ispb`, apart from everything above.
    pub flood: Option<FloodReport>,
    /// Failed requests by `METHOD status code` (`START` is `stream/start`), over the
    /// whole run.
    pub errors: BTreeMap<String, u64>,
    pub drain: Option<Drain>,
    pub ledger: LedgerReport,
    /// What the window cost (absent when the node's `/metrics` could not be read).
    pub cost: Option<Cost>,
    /// `--http-floor`: `GET /healthz` measured before the run.
    pub floor: Option<Floor>,
    /// Things the reader should know that do not affect the verdict.
    pub notes: Vec<String>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    pub url: String,
    pub internal_url: String,
    pub ispbs: usize,
    pub streams: usize,
    pub pullers: usize,
    pub producers: usize,
    /// Messages per second asked for (0 = as fast as possible).
    pub rate: u64,
    pub batch: usize,
    pub message_bytes: usize,
    pub preload: usize,
    pub duration_secs: u64,
    pub warmup_secs: u64,
    pub gzip: bool,
    /// One message per pull (`Accept: application/xml`) instead of multipart batches.
    pub single: bool,
    pub http2: bool,
    pub clients: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Pulls {
    /// Pull requests answered 200 or 204 inside the window.
    pub total: u64,
    pub with_messages: u64,
    pub empty: u64,
    pub per_minute: f64,
    pub with_messages_per_minute: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Messages {
    /// Messages acknowledged by the producer API inside the window.
    pub produced: u64,
    /// Messages received for the first time inside the window.
    pub delivered: u64,
    /// Messages received again inside the window.
    pub redelivered: u64,
    pub produced_per_sec: f64,
    pub delivered_per_sec: f64,
    /// Messages per pull that returned messages.
    pub mean_batch: f64,
}

/// Latencies of served requests only: pulls answered 200/204 and appends answered
/// 200/201. Refused (429, 503 …) and failed requests are not timed; `Report::answers`
/// counts them.
#[derive(Clone, Debug, Serialize)]
pub struct Latencies {
    /// Always `served requests only`, for readers of the JSON.
    pub of: &'static str,
    /// Pull round trips (request sent → body received) that returned messages. With
    /// sparse traffic most of them waited in the long poll for a message to arrive.
    pub pull_with_messages: Summary,
    /// Those that found messages ready: one was acknowledged to its producer before
    /// the pull was sent (no long-poll wait was due). SPEC.md §8's pull latency target.
    pub pull_ready: Summary,
    /// Pull round trips answered 204 (they last about the server's long-poll wait).
    pub pull_empty: Summary,
    /// Producer POST sent → first delivery of the message (one clock: same process).
    pub end_to_end: Summary,
    /// Producer POST round trips.
    pub produce: Summary,
}

/// Answers to the measured ISPBs' requests inside the window (pullers: every
/// stream/start, next and DELETE; producers: every attempt, retries included).
#[derive(Clone, Debug, Serialize)]
pub struct Answers {
    pub pullers: AnswerSummary,
    pub producers: AnswerSummary,
    /// Both together: `all.shed_share` is the run's shed share (503 / all requests).
    pub all: AnswerSummary,
}

#[derive(Clone, Debug, Serialize)]
pub struct Drain {
    /// Everything produced was received in time.
    pub drained: bool,
    /// From the start of the drain (pullers started, or producers stopped) until the
    /// last produced message arrived.
    pub time_to_empty_secs: Option<f64>,
    /// Drain mode: how long the preload took.
    pub preload_secs: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub clean: bool,
    pub problems: Vec<String>,
}

impl Report {
    pub(crate) fn build(
        shared: &Shared,
        measured: Duration,
        drain: Option<Drain>,
        flood: Option<FloodReport>,
        readings: Option<(Reading, Reading)>,
        floor: Option<Floor>,
    ) -> Report {
        let args = &shared.args;
        let totals: Recorder = shared.metrics.totals();
        let secs = measured.as_secs_f64().max(1e-9);
        let with_messages = totals.pull_with_messages.len();
        let empty = totals.pull_empty.len();
        let loss_checked = drain.is_some();
        let ledger = shared.ledger.finish(loss_checked);
        let mut problems = ledger.problems();
        if ledger.produced == 0 {
            problems.push("nothing was produced".to_owned());
        } else if ledger.delivered == 0 {
            problems.push("nothing produced was delivered".to_owned());
        }
        let mut notes = Vec::new();
        let produced_per_sec = totals.produced as f64 / secs;
        if !args.drain_mode() && args.rate > 0 && produced_per_sec < args.rate as f64 * 0.9 {
            notes.push(format!(
                "producers fell behind: {produced_per_sec:.0} of {} msg/s (POST p50 {:.0} ms); raise --producers",
                args.rate,
                Summary::of(&totals.produce).p50_ms
            ));
        }
        if args.streams > 6 {
            notes.push(format!("{} pullers per ISPB: the server allows 6 open streams, expect 429s", args.streams));
        }
        if args.drain_mode() {
            notes.push("end-to-end latency includes the time messages waited in the preloaded backlog".to_owned());
        }
        if ledger.foreign > 0 {
            notes.push(format!(
                "{} messages not produced by this run were received (left over from an earlier run on the same ISPBs?)",
                ledger.foreign
            ));
        }
        let answers = Answers {
            pullers: AnswerSummary::of(&totals.pull_answers),
            producers: AnswerSummary::of(&totals.produce_answers),
            all: AnswerSummary::merged(&totals.pull_answers, &totals.produce_answers),
        };
        if answers.all.rate_limited > 0 {
            notes.push(format!(
                "the measured ISPBs got {} x {RATE_LIMITED}: their own rate limit, not isolation, slowed them",
                answers.all.rate_limited
            ));
        }
        if answers.all.shed > 0 {
            notes.push(format!(
                "{} of {} requests were shed (503, {:.2} %): latencies are of served requests only",
                answers.all.shed,
                answers.all.requests,
                answers.all.shed_share * 100.0
            ));
        }
        let mode = match (args.drain_mode(), args.drain) {
            (true, _) => "drain",
            (false, true) => "duration+drain",
            (false, false) => "duration",
        };
        let pulls = with_messages + empty;
        let cost = readings.map(|(opened, closed)| Cost::between(&opened, &closed, secs, pulls, totals.delivered));
        if cost.as_ref().is_some_and(|c| c.server_cpu_seconds.is_none()) {
            notes.push("the node's /metrics gave no process CPU: server cost not reported".to_owned());
        }
        Report {
            mode,
            setup: Setup {
                url: shared.public_base.clone(),
                internal_url: shared.internal_base.clone(),
                ispbs: args.ispbs,
                streams: args.streams,
                pullers: args.ispbs * args.streams,
                producers: args.producers,
                rate: if args.drain_mode() { 0 } else { args.rate },
                batch: args.batch,
                message_bytes: args.message_bytes,
                preload: args.preload,
                duration_secs: args.duration,
                warmup_secs: if args.drain_mode() { 0 } else { args.warmup },
                gzip: args.gzip,
                single: args.single,
                http2: args.http2,
                clients: args.clients,
            },
            measured_secs: measured.as_secs_f64(),
            pulls: Pulls {
                total: with_messages + empty,
                with_messages,
                empty,
                per_minute: (with_messages + empty) as f64 * 60.0 / secs,
                with_messages_per_minute: with_messages as f64 * 60.0 / secs,
            },
            messages: Messages {
                produced: totals.produced,
                delivered: totals.delivered,
                redelivered: totals.redelivered,
                produced_per_sec,
                delivered_per_sec: totals.delivered as f64 / secs,
                mean_batch: if with_messages == 0 {
                    0.0
                } else {
                    (totals.delivered + totals.redelivered) as f64 / with_messages as f64
                },
            },
            latency: Latencies {
                of: "served requests only",
                pull_with_messages: Summary::of(&totals.pull_with_messages),
                pull_ready: Summary::of(&totals.pull_ready),
                pull_empty: Summary::of(&totals.pull_empty),
                end_to_end: Summary::of(&totals.end_to_end),
                produce: Summary::of(&totals.produce),
            },
            answers,
            flood,
            errors: totals.errors,
            drain,
            notes,
            verdict: Verdict { clean: problems.is_empty(), problems },
            ledger,
            cost,
            floor,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.setup;
        writeln!(f, "pixstream bench: {} mode, {:.1} s measured", self.mode, self.measured_secs)?;
        writeln!(f, "  target     public {}  internal {}", s.url, s.internal_url)?;
        let production = if s.preload > 0 {
            format!("preload {} per ISPB", thousands(s.preload as f64))
        } else if s.rate == 0 {
            "as fast as possible".to_owned()
        } else {
            format!("{} msg/s", thousands(s.rate as f64))
        };
        writeln!(
            f,
            "  load       {} ISPBs x {} streams = {} pullers; {} producers, {production}, batch {}, ~{} B; {}, {}, gzip {}, {} clients",
            s.ispbs,
            s.streams,
            s.pullers,
            s.producers,
            s.batch,
            s.message_bytes,
            if s.single { "1 message per pull" } else { "up to 10 per pull" },
            if s.http2 { "HTTP/2" } else { "HTTP/1.1" },
            if s.gzip { "on" } else { "off" },
            s.clients
        )?;
        let p = &self.pulls;
        writeln!(
            f,
            "  pulls      {}/min  (with messages {}/min, empty {}/min; {} pulls)",
            thousands(p.per_minute),
            thousands(p.with_messages_per_minute),
            thousands(p.per_minute - p.with_messages_per_minute),
            thousands(p.total as f64)
        )?;
        let m = &self.messages;
        let produced = match self.drain.as_ref().and_then(|d| d.preload_secs) {
            Some(secs) => format!(
                "preloaded {} in {secs:.2} s ({}/s)",
                self.ledger.produced,
                thousands(self.ledger.produced as f64 / secs.max(1e-9))
            ),
            None => format!("produced {}/s", thousands(m.produced_per_sec)),
        };
        writeln!(
            f,
            "  messages   {produced}, delivered {}/s (first deliveries), {} redelivered, {:.2} per pull with messages",
            thousands(m.delivered_per_sec),
            m.redelivered,
            m.mean_batch
        )?;
        writeln!(
            f,
            "  latency ms {:>24} {:>9} {:>9} {:>9} {:>9} {:>9}   (served requests only)",
            "count", "p50", "p99", "p99.9", "max", "mean"
        )?;
        let l = &self.latency;
        for (name, summary) in [
            ("pull with messages", &l.pull_with_messages),
            ("  found ready", &l.pull_ready),
            ("pull empty (204)", &l.pull_empty),
            ("end-to-end", &l.end_to_end),
            ("produce POST", &l.produce),
        ] {
            writeln!(
                f,
                "    {name:<20} {:>12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                summary.count, summary.p50_ms, summary.p99_ms, summary.p999_ms, summary.max_ms, summary.mean_ms
            )?;
        }
        let a = &self.answers;
        writeln!(f, "  answers    pullers {} requests: {}", thousands(a.pullers.requests as f64), a.pullers.list())?;
        writeln!(
            f,
            "             producers {} requests: {}",
            thousands(a.producers.requests as f64),
            a.producers.list()
        )?;
        writeln!(
            f,
            "             shed share {:.2} % ({} x 503 of {}), {} x 429 rateLimited, {} x 429 tooManyStreams",
            a.all.shed_share * 100.0,
            a.all.shed,
            a.all.requests,
            a.all.rate_limited,
            a.all.too_many_streams
        )?;
        if let Some(flood) = &self.flood {
            writeln!(
                f,
                "  flood      {} at {}/s asked over {} HTTP/2 connections: {} sent ({}/s), {} skipped, {} unanswered at end",
                flood.ispb,
                thousands(flood.rate as f64),
                flood.connections,
                thousands(flood.sent as f64),
                thousands(flood.sent_per_sec),
                flood.skipped,
                flood.unanswered
            )?;
            writeln!(
                f,
                "             {} (rate limited {:.1} %)",
                flood.answers.list(),
                flood.rate_limited_share * 100.0
            )?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors     none")?;
        } else {
            let list: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            writeln!(f, "  errors     {}", list.join(", "))?;
        }
        let g = &self.ledger;
        let undelivered_label = if g.loss_checked { "lost" } else { "undelivered at end" };
        writeln!(
            f,
            "  ledger     produced {}, delivered {}, {undelivered_label} {}, foreign {}, deliveries {}, redeliveries {}",
            g.produced, g.delivered, g.undelivered, g.foreign, g.counts.deliveries, g.counts.redeliveries
        )?;
        writeln!(
            f,
            "             outstanding in two streams {}, order violations {} (excused after lost responses {}), \
             id mismatches {}, duplicate ids {}, seq conflicts {}, seq gaps {}, malformed {}, lost responses {}",
            g.counts.double_outstanding,
            g.counts.order_violations,
            g.counts.order_excused,
            g.counts.id_mismatches,
            g.counts.duplicate_ids,
            g.counts.seq_conflicts,
            if g.loss_checked { g.seq_gaps.to_string() } else { "n/a".to_owned() },
            g.counts.malformed,
            g.counts.lost_responses
        )?;
        if g.counts.unexpected_duplicate_appends > 0 {
            writeln!(
                f,
                "             {} appends answered as duplicates of earlier messages",
                g.counts.unexpected_duplicate_appends
            )?;
        }
        for example in &g.examples {
            writeln!(f, "             e.g. {example}")?;
        }
        if let Some(d) = &self.drain {
            let preload = d.preload_secs.map(|s| format!(" (preload took {s:.2} s)")).unwrap_or_default();
            match d.time_to_empty_secs {
                Some(t) => writeln!(f, "  drain      emptied in {t:.2} s{preload}")?,
                None => writeln!(f, "  drain      NOT emptied in time{preload}")?,
            }
        }
        if let Some(floor) = &self.floor {
            writeln!(f, "{}", floor_line(floor))?;
        }
        if let Some(cost) = &self.cost {
            write_cost(f, cost, self.floor.as_ref())?;
        }
        for note in &self.notes {
            writeln!(f, "  note       {note}")?;
        }
        if self.verdict.clean {
            write!(f, "  verdict    CLEAN")
        } else {
            write!(f, "  verdict    NOT CLEAN: {}", self.verdict.problems.join("; "))
        }
    }
}

/// The floor measurement in one line.
pub(crate) fn floor_line(floor: &Floor) -> String {
    format!(
        "  floor      GET /healthz x {} over {} connections in {:.1} s ({}/s): server {} per request, tool {:.1} µs",
        thousands(floor.requests as f64),
        floor.connections,
        floor.secs,
        thousands(floor.per_sec),
        micros(floor.server_us_per_request),
        floor.tool_us_per_request
    )
}

fn micros(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1} µs"))
}

/// The cost lines: CPU per pull and per message, then the server's operations per
/// delivered message.
fn write_cost(f: &mut fmt::Formatter<'_>, cost: &Cost, floor: Option<&Floor>) -> fmt::Result {
    let of_floor = match (cost.server_us_per_pull, floor.and_then(|fl| fl.server_us_per_request)) {
        (Some(pull), Some(floor)) if floor > 0.0 => format!(" = {:.2}x the floor", pull / floor),
        _ => String::new(),
    };
    writeln!(
        f,
        "  cost       CPU per pull: server {}{of_floor}, tool {:.1} µs; per delivered message: server {}, tool {:.1} µs",
        micros(cost.server_us_per_pull),
        cost.tool_us_per_pull,
        micros(cost.server_us_per_message),
        cost.tool_us_per_message
    )?;
    writeln!(
        f,
        "             server {} of a core ({} s), tool {:.2} of a core ({:.1} s), over {} pulls and {} messages",
        cost.server_cores.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}")),
        cost.server_cpu_seconds.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.1}")),
        cost.tool_cores,
        cost.tool_cpu_seconds,
        thousands(cost.pulls as f64),
        thousands(cost.messages as f64)
    )?;
    let get = |key: &str| cost.per_message.get(key).copied();
    let mut ops = Vec::new();
    for (key, label) in [
        ("proposals", "proposals"),
        ("raft_entries", "Raft entries"),
        ("write_batches", "write batches"),
        ("written_keys", "keys written"),
        ("fsyncs", "fsyncs"),
        ("message_reads", "message reads"),
        ("wakes", "wake-ups"),
        ("wake_receivers", "polls reached"),
        ("voluntary_switches", "context switches"),
        ("read_syscalls", "read syscalls"),
        ("write_syscalls", "write syscalls"),
    ] {
        if let Some(value) = get(key) {
            ops.push(format!("{value:.2} {label}"));
        }
    }
    if let Some(bytes) = get("written_bytes") {
        ops.push(format!("{} B written", thousands(bytes)));
    }
    if !ops.is_empty() {
        writeln!(f, "             per delivered message: {}", ops.join(", "))?;
    }
    Ok(())
}

/// One progress line: the last interval's rates and p99s, errors and backlog.
pub(crate) fn progress_line(shared: &Shared, interval: &Recorder, seconds: f64) -> String {
    let p99 = |h: &hdrhistogram::Histogram<u64>| {
        if h.is_empty() { "-".to_owned() } else { format!("{:.1}", h.value_at_quantile(0.99) as f64 / 1000.0) }
    };
    format!(
        "[{:>6.1}s] pulls/min {} (with msgs {})  msg/s produced {} delivered {}{}  p99 ms: pull {} ready {} e2e {}  errors {} (503 {})  undelivered {}",
        shared.epoch.elapsed().as_secs_f64(),
        thousands(interval.pulls() as f64 * 60.0 / seconds),
        thousands(interval.pull_with_messages.len() as f64 * 60.0 / seconds),
        thousands(interval.produced as f64 / seconds),
        thousands(interval.delivered as f64 / seconds),
        if interval.redelivered > 0 { format!(" (+{} redelivered)", interval.redelivered) } else { String::new() },
        p99(&interval.pull_with_messages),
        p99(&interval.pull_ready),
        p99(&interval.end_to_end),
        interval.error_total(),
        shed(&interval.pull_answers) + shed(&interval.produce_answers),
        shared.ledger.undelivered(),
    )
}

/// 503 answers among `counts`.
fn shed(counts: &crate::answers::Counts) -> u64 {
    counts.iter().filter(|(k, _)| k.starts_with("503")).map(|(_, n)| n).sum()
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
