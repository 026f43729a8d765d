//! What a scrape reads from the node's state: per-ISPB delivery state of the shards
//! this node leads (each tenant is reported once in a cluster: by its leader),
//! bounded to the `MAX_ISPB_SERIES` ISPBs with the largest backlog plus totals over
//! all; per shard, the Raft role, term, log and applied index and each follower's
//! lag; the in-flight count and shed requests; RocksDB sizes; process CPU and RSS.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use storage::{Ispb, TenantState};
use wire::clock::now_ms;

use super::process;
use crate::app::App;

/// Most ISPBs with their own series per scrape: the exposition stays bounded
/// however many tenants the node holds.
pub const MAX_ISPB_SERIES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IspbLabels {
    ispb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabels {
    shard: u32,
    follower: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ColumnLabels {
    column: &'static str,
}

type Gauges<L> = Family<L, Gauge>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A tenant's unconfirmed messages.
fn backlog(tenant: &TenantState) -> u64 {
    tenant.next_seq.saturating_sub(tenant.watermark).saturating_sub(tenant.confirmed_above.len() as u64)
}

/// Registers the state gauges of `app`, filled now, into `registry`.
pub fn register_state(app: &App, registry: &mut Registry) {
    // (ISPB, backlog, open streams, watermark, next seq, waiting for redelivery)
    let mut tenants: Vec<(Ispb, u64, u64, u64, u64, u64)> = Vec::new();
    let shards = &app.shards;
    for shard in shards.hosted_shards().filter(|s| shards.is_leader(*s)) {
        let Some(machine) = shards.machine(shard) else { continue };
        let machine = machine.read();
        tenants.extend(
            machine.tenants().map(|t| {
                (t.ispb, backlog(t), t.streams.len() as u64, t.watermark, t.next_seq, t.redeliver.len() as u64)
            }),
        );
    }
    let total_backlog: u64 = tenants.iter().map(|t| t.1).sum();
    let tenant_count = tenants.len();
    tenants.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    tenants.truncate(MAX_ISPB_SERIES);

    let (backlogs, streams, watermarks, next_seqs) = (
        Gauges::<IspbLabels>::default(),
        Gauges::<IspbLabels>::default(),
        Gauges::<IspbLabels>::default(),
        Gauges::<IspbLabels>::default(),
    );
    let oldest = Family::<IspbLabels, FloatGauge>::default();
    let redeliver = Gauges::<IspbLabels>::default();
    let now = now_ms();
    for (ispb, backlog, open, watermark, next_seq, waiting) in &tenants {
        let labels = IspbLabels { ispb: ispb.as_str().to_owned() };
        backlogs.get_or_create(&labels).set(*backlog as i64);
        streams.get_or_create(&labels).set(*open as i64);
        watermarks.get_or_create(&labels).set(*watermark as i64);
        next_seqs.get_or_create(&labels).set(*next_seq as i64);
        redeliver.get_or_create(&labels).set(*waiting as i64);
        let age = (*backlog > 0)
            .then(|| app.store.read_messages(ispb, &[*watermark]).ok())
            .flatten()
            .and_then(|messages| messages.first().map(|m| now.saturating_sub(m.enqueued_at_ms)))
            .unwrap_or(0);
        oldest.get_or_create(&labels).set(age as f64 / 1000.0);
    }
    registry.register("ispb_backlog", "Unconfirmed messages of an ISPB (largest backlogs only)", backlogs);
    registry.register("ispb_open_streams", "Open streams of an ISPB", streams);
    registry.register("ispb_watermark", "Seq below which everything of an ISPB is confirmed", watermarks);
    registry.register("ispb_next_seq", "Seq the next message of an ISPB gets", next_seqs);
    registry.register("ispb_oldest_unconfirmed_age_seconds", "Age of an ISPB's oldest unconfirmed message", oldest);
    registry.register(
        "ispb_redelivery_pending",
        "Messages of an ISPB returned unconfirmed, waiting to go out again",
        redeliver,
    );
    registry.register("tenants", "Tenants of the shards this node leads", gauge(tenant_count as i64));
    registry.register("backlog", "Unconfirmed messages over every tenant this node leads", gauge(total_backlog as i64));

    let (leader, term, last_log, applied) = (
        Gauges::<ShardLabels>::default(),
        Gauges::<ShardLabels>::default(),
        Gauges::<ShardLabels>::default(),
        Gauges::<ShardLabels>::default(),
    );
    let lag = Gauges::<FollowerLabels>::default();
    for shard in shards.hosted_shards() {
        let Some(metrics) = shards.metrics(shard) else { continue };
        let labels = ShardLabels { shard };
        leader.get_or_create(&labels).set(i64::from(shards.is_leader(shard)));
        term.get_or_create(&labels).set(metrics.current_term as i64);
        let last_index = metrics.last_log_index.unwrap_or(0);
        last_log.get_or_create(&labels).set(last_index as i64);
        applied.get_or_create(&labels).set(metrics.last_applied.map_or(0, |id| id.index) as i64);
        for (follower, matched) in metrics.replication.iter().flatten() {
            if *follower == shards.node_id() {
                continue;
            }
            let behind = last_index.saturating_sub(matched.map_or(0, |id| id.index));
            lag.get_or_create(&FollowerLabels { shard, follower: *follower }).set(behind as i64);
        }
    }
    registry.register("shard_leader", "1 when this node leads the shard", leader);
    registry.register("shard_term", "Raft term of the shard on this node", term);
    registry.register("shard_last_log_index", "Last Raft log index of the shard on this node", last_log);
    registry.register("shard_applied_index", "Last applied Raft log index of the shard on this node", applied);
    registry.register("shard_replication_lag_entries", "Log entries a follower is behind the leader", lag);

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

    let sizes = Gauges::<ColumnLabels>::default();
    for column in storage::columns::ALL {
        if let Ok(cf) = app.store.cf(column)
            && let Ok(Some(bytes)) = app.store.db().property_int_value_cf(cf, "rocksdb.total-sst-files-size")
        {
            sizes.get_or_create(&ColumnLabels { column }).set(bytes as i64);
        }
    }
    registry.register("storage_sst_bytes", "Bytes of SST files by column family", sizes);
    if let Ok(Some(delayed)) = app.store.db().property_int_value("rocksdb.actual-delayed-write-rate") {
        registry.register(
            "storage_delayed_write_rate_bytes",
            "Write rate RocksDB slows writers to (0: no stall)",
            gauge(delayed as i64),
        );
    }
    if let Some((cpu, rss)) = process::cpu_and_rss() {
        let cpu_gauge = FloatGauge::default();
        cpu_gauge.set(cpu);
        registry.register("process_cpu_seconds", "CPU time of the process, user and system", cpu_gauge);
        registry.register("process_resident_memory_bytes", "Resident memory of the process", gauge(rss as i64));
    }
}

fn gauge(value: i64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value);
    gauge
}
