//! Storage series: SST and blob file bytes by column family, the write rate RocksDB slows writers
//! to, the cumulative write-stall time, and the free and total bytes of the
//! filesystem holding the data directory (for the storage-near-full alert).

use std::path::Path;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use storage::Store;

use super::scrape::gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ColumnLabels {
    column: &'static str,
}

/// Registers the storage series of `store`, whose files live under `data_dir`.
pub fn register(store: &Store, data_dir: &Path, registry: &mut Registry) {
    registry.register(
        "storage_sst_bytes",
        "Bytes of SST files by column family",
        per_column(store, "rocksdb.total-sst-files-size"),
    );
    registry.register(
        "storage_blob_bytes",
        "Bytes of blob files (message bodies of 1 KiB and more) by column family",
        per_column(store, "rocksdb.total-blob-file-size"),
    );
    if let Ok(Some(delayed)) = store.db().property_int_value("rocksdb.actual-delayed-write-rate") {
        registry.register(
            "storage_delayed_write_rate_bytes",
            "Write rate RocksDB slows writers to (0: no stall)",
            gauge(delayed as i64),
        );
    }
    if let Some(stalled) =
        store.db().property_value("rocksdb.dbstats").ok().flatten().and_then(|s| cumulative_stall_secs(&s))
    {
        registry.register(
            "storage_stall_seconds",
            "Time RocksDB held writers back (write stalls) since the node started",
            ConstCounter::new(stalled),
        );
    }
    if let Ok(fs) = rustix::fs::statvfs(data_dir) {
        let block = fs.f_frsize.max(1);
        registry.register(
            "storage_free_bytes",
            "Bytes the data directory's filesystem still has for the node",
            gauge((fs.f_bavail * block) as i64),
        );
        registry.register(
            "storage_capacity_bytes",
            "Size of the data directory's filesystem",
            gauge((fs.f_blocks * block) as i64),
        );
    }
}

/// The integer RocksDB `property` of every column family.
fn per_column(store: &Store, property: &str) -> Family<ColumnLabels, Gauge> {
    let values = Family::<ColumnLabels, Gauge>::default();
    for column in storage::columns::ALL {
        if let Ok(cf) = store.cf(column)
            && let Ok(Some(value)) = store.db().property_int_value_cf(cf, property)
        {
            values.get_or_create(&ColumnLabels { column }).set(value as i64);
        }
    }
    values
}

/// Seconds of the `Cumulative stall: H:MM:SS.sss H:M:S` line of RocksDB's DB stats.
fn cumulative_stall_secs(db_stats: &str) -> Option<f64> {
    let line = db_stats.lines().find_map(|line| line.trim().strip_prefix("Cumulative stall:"))?;
    let clock = line.split_whitespace().next()?;
    let mut parts = clock.split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    Some(hours.parse::<f64>().ok()? * 3600.0 + minutes.parse::<f64>().ok()? * 60.0 + seconds.parse::<f64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::cumulative_stall_secs;

    #[test]
    fn the_cumulative_stall_is_read_from_the_db_stats() {
        let stats = "\n** DB Stats **\nUptime(secs): 12.0 total, 2.0 interval\nCumulative writes: 10 writes\nCumulative stall: 01:02:3.500 H:M:S, 0.1 percent\nInterval stall: 00:00:0.000 H:M:S, 0.0 percent\n";
        assert_eq!(cumulative_stall_secs(stats), Some(3723.5));
        assert_eq!(cumulative_stall_secs("no stats"), None);
    }
}
