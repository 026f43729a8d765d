//! Cursor churn (SPEC.md §7): messages handed out again, streams expired, pulls
//! answered by the previous-token retry. Counted by the node that serves the
//! request or runs the sweeper (the shard's leader), once per event.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The churn counters; clones count into the same series.
#[derive(Clone, Debug, Default)]
pub struct Churn {
    /// Messages whose batch came back unconfirmed (stream closed with the previous
    /// token, or expired): they go out again.
    pub redeliveries: Counter,
    /// Streams closed by idle expiry.
    pub expiries: Counter,
    /// Pulls answered with the same batch again (the previous token).
    pub retries: Counter,
}

impl Churn {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "redeliveries",
            "Messages returned unconfirmed (stream closed or expired) to go out again",
            self.redeliveries.clone(),
        );
        registry.register("stream_expiries", "Streams closed by idle expiry", self.expiries.clone());
        registry.register(
            "cursor_retries",
            "Pulls answered with the same batch again (previous PI-Pull-Next)",
            self.retries.clone(),
        );
    }
}
