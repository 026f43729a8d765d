//! What a scrape reads from the node's state, registered into a fresh registry at
//! each scrape: per-ISPB delivery state (`tenants`), the Raft groups (`shards`),
//! RocksDB and its disk (`disk`), the load and the process.

use prometheus_client::metrics::counter::ConstCounter;
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
        "shed_requests",
        "Requests refused with 503 because the node was at max_in_flight",
        ConstCounter::new(app.load.shed()),
    );
    disk::register(&app.store, &app.config.data_dir, registry);
    if let Some((cpu, rss)) = process::cpu_and_rss() {
        registry.register("process_cpu_seconds", "CPU time of the process, user and system", ConstCounter::new(cpu));
        registry.register("process_resident_memory_bytes", "Resident memory of the process", gauge(rss as i64));
    }
}

/// A gauge holding `value`.
pub(super) fn gauge(value: i64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value);
    gauge
}
