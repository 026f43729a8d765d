//! Per-ISPB series of the shards this node leads (each tenant is reported once in a
//! cluster: by its leader), bounded to `MAX_ISPB_SERIES` ISPBs per scrape. The ones
//! an operator must see come first — under back-pressure, or with every stream slot
//! taken — then the largest backlogs; totals over all tenants are separate gauges.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use storage::{Ispb, TenantState};
use wire::clock::now_ms;

use super::scrape::{FloatGauge, gauge};
use crate::app::App;

/// Most ISPBs with their own series per scrape: the exposition stays bounded
/// however many tenants the node holds.
pub const MAX_ISPB_SERIES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IspbLabels {
    ispb: String,
}

type Gauges = Family<IspbLabels, Gauge>;

/// What a scrape reports of one tenant.
struct TenantRow {
    ispb: Ispb,
    backlog: u64,
    backlog_limit: u64,
    open_streams: u64,
    stream_slots: u64,
    watermark: u64,
    next_seq: u64,
    redelivery_pending: u64,
}

impl TenantRow {
    fn of(tenant: &TenantState) -> TenantRow {
        TenantRow {
            ispb: tenant.ispb,
            backlog: backlog(tenant),
            backlog_limit: tenant.settings.max_backlog,
            open_streams: tenant.streams.len() as u64,
            stream_slots: u64::from(tenant.settings.max_streams),
            watermark: tenant.watermark,
            next_seq: tenant.next_seq,
            redelivery_pending: tenant.redeliver.len() as u64,
        }
    }

    fn back_pressure(&self) -> bool {
        self.backlog >= self.backlog_limit
    }

    fn slots_full(&self) -> bool {
        self.open_streams >= self.stream_slots
    }
}

/// A per-ISPB gauge: name, help, and what it reads of a row.
type RowGauge = (&'static str, &'static str, fn(&TenantRow) -> u64);

/// A tenant's unconfirmed messages.
fn backlog(tenant: &TenantState) -> u64 {
    tenant.next_seq.saturating_sub(tenant.watermark).saturating_sub(tenant.confirmed_above.len() as u64)
}

/// Registers the per-ISPB gauges and the tenant totals of `app` into `registry`.
pub fn register(app: &App, registry: &mut Registry) {
    let mut rows = led_tenants(app);
    let total_backlog: u64 = rows.iter().map(|row| row.backlog).sum();
    let tenant_count = rows.len();
    let pressured = rows.iter().filter(|row| row.back_pressure()).count();
    rows.sort_by(|a, b| {
        (b.back_pressure(), b.slots_full(), b.backlog)
            .cmp(&(a.back_pressure(), a.slots_full(), a.backlog))
            .then(a.ispb.cmp(&b.ispb))
    });
    rows.truncate(MAX_ISPB_SERIES);

    let gauges: [RowGauge; 8] = [
        ("ispb_backlog", "Unconfirmed messages of an ISPB", |r| r.backlog),
        ("ispb_backlog_limit", "The tenant's max_backlog: producers get 503 at it", |r| r.backlog_limit),
        ("ispb_back_pressure", "1 while an ISPB's backlog is at its limit (producers refused)", |r| {
            u64::from(r.back_pressure())
        }),
        ("ispb_open_streams", "Open streams of an ISPB", |r| r.open_streams),
        ("ispb_stream_slots", "Streams an ISPB may open at once (max_streams)", |r| r.stream_slots),
        ("ispb_watermark", "Seq below which everything of an ISPB is confirmed", |r| r.watermark),
        ("ispb_next_seq", "Seq the next message of an ISPB gets", |r| r.next_seq),
        ("ispb_redelivery_pending", "Messages of an ISPB returned unconfirmed, waiting to go out again", |r| {
            r.redelivery_pending
        }),
    ];
    for (name, help, value) in gauges {
        let family = Gauges::default();
        for row in &rows {
            family.get_or_create(&labels(&row.ispb)).set(value(row) as i64);
        }
        registry.register(name, help, family);
    }
    let ages = Family::<IspbLabels, FloatGauge>::default();
    let pulls = Family::<IspbLabels, Counter>::default();
    let now = now_ms();
    for row in &rows {
        let age_ms = app.store.oldest_unconfirmed_age_ms(&row.ispb, row.watermark, row.backlog, now);
        ages.get_or_create(&labels(&row.ispb)).set(age_ms as f64 / 1000.0);
        pulls.get_or_create(&labels(&row.ispb)).inc_by(app.metrics.pulls.get(&row.ispb));
    }
    registry.register(
        "ispb_oldest_unconfirmed_age_seconds",
        "Age of an ISPB's oldest unconfirmed message (0 when none)",
        ages,
    );
    registry.register("ispb_pulls", "Pulls of an ISPB answered by this node (200 or 204)", pulls);
    registry.register("tenants", "Tenants of the shards this node leads", gauge(tenant_count as i64));
    registry.register("tenants_back_pressured", "Tenants whose backlog is at its limit", gauge(pressured as i64));
    registry.register("backlog", "Unconfirmed messages over every tenant this node leads", gauge(total_backlog as i64));
}

fn labels(ispb: &Ispb) -> IspbLabels {
    IspbLabels { ispb: ispb.as_str().to_owned() }
}

/// The tenants (participants only) of every shard this node leads.
fn led_tenants(app: &App) -> Vec<TenantRow> {
    let mut rows = app.shards.led_tenants(TenantRow::of);
    rows.retain(|row| !row.ispb.is_cluster());
    rows
}
