//! What a scrape reads from the node's state, registered into a fresh registry at
//! each scrape: per-ISPB delivery state (`tenants`), the Raft groups (`shards`),
//! RocksDB and its disk (`disk`), the load and the process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{disk, process, shards, tenants};
use crate::app::App;

/// A float gauge (ages, ratios).
pub(super) type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Registers the state gauges of `app`, filled now, into `registry`.
pub fn register_state(app: &App, registry: &mut Registry) {
    tenants::register(app, registry);
    shards::register(&app.shards, registry);
    registry.register(
        "in_flight_requests",
        "Requests being worked on (waiting long polls excluded)",
        gauge(app.load.in_flight() as i64),
    );
    registry.register(
        "in_flight_appends",
        "Appends being served here (at listeners.max_in_flight_appends more are shed)",
        gauge(app.load.appends_now() as i64),
    );
    registry.register(
        "waiting_requests",
        "Requests waiting without working: parked long polls, forwards awaiting the leader",
        gauge(app.load.waiting_now() as i64),
    );
    registry.register(
        "shed_requests",
        "Requests refused with 503 because the node was at max_in_flight or max_in_flight_appends",
        ConstCounter::new(app.load.shed()),
    );
    disk::register(&app.store, &app.config.data_dir, registry);
    if let Some((cpu, rss)) = process::cpu_and_rss() {
        registry.register("process_cpu_seconds", "CPU time of the process, user and system", ConstCounter::new(cpu));
        registry.register("process_resident_memory_bytes", "Resident memory of the process", gauge(rss as i64));
    }
    if let Some((voluntary, involuntary)) = process::context_switches() {
        registry.register(
            "process_context_switches",
            "Context switches of the process's threads, by kind (voluntary: a thread went to sleep)",
            by_kind([("voluntary", voluntary), ("involuntary", involuntary)]),
        );
    }
    if let Some((reads, writes)) = process::io_syscalls() {
        registry.register(
            "process_io_syscalls",
            "read- and write-family system calls through the file layer (files, eventfds, socket writev; recv and send are not counted)",
            by_kind([("read", reads), ("write", writes)]),
        );
    }
    let wakes = app.pull.wake_counts();
    registry.register(
        "long_poll_wakes",
        "Wake-ups of an ISPB's waiting long polls (an append, a batch returned, a stream closed)",
        ConstCounter::new(wakes.wakes),
    );
    registry.register(
        "long_poll_wake_receivers",
        "Subscribed long polls those wake-ups reached",
        ConstCounter::new(wakes.polls_reached),
    );
    let store = app.store.counts();
    for (name, help, value) in [
        ("storage_writes", "Write batches handed to RocksDB (one write-ahead-log record each)", store.writes),
        ("storage_written_keys", "Puts and deletes in those write batches", store.written_keys),
        ("storage_written_bytes", "Bytes of those write batches", store.written_bytes),
        ("storage_syncs", "fsyncs of the write-ahead log", store.syncs),
        (
            "storage_message_reads",
            "Stored messages read back (hand-outs, audit resource ids, ages)",
            store.message_reads,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// A counter family with one series per `(kind, value)`.
fn by_kind<const N: usize>(values: [(&'static str, u64); N]) -> Family<KindLabels, Counter> {
    let family = Family::<KindLabels, Counter>::default();
    for (kind, value) in values {
        family.get_or_create(&KindLabels { kind }).inc_by(value);
    }
    family
}

/// A gauge holding `value`.
pub(super) fn gauge(value: i64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value);
    gauge
}
