//! `Shared`: what every task of one run shares (arguments, ledger, metrics, the
//! measuring window, the stop signals), and the small helpers of the tasks' HTTP
//! loops (transport error kinds, retry jitter).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::args::BenchArgs;
use crate::ledger::Ledger;
use crate::metrics::Metrics;

/// What every task of a run shares.
pub(crate) struct Shared {
    pub args: BenchArgs,
    pub ispbs: Vec<String>,
    pub public_base: String,
    pub internal_base: String,
    pub ledger: Ledger,
    pub metrics: Metrics,
    /// Time zero of the run; every timestamp is microseconds since it.
    pub epoch: Instant,
    /// Measuring window, µs since `epoch`: requests completing inside it are counted.
    pub measure_from_us: AtomicU64,
    pub measure_until_us: AtomicU64,
    /// Cancelled when producers must stop starting requests.
    pub stop_producing: CancellationToken,
    /// Cancelled when pullers must stop (in-flight requests are abandoned).
    pub stop_pulling: CancellationToken,
    /// Producer requests not yet answered (including retries).
    pub producers_busy: AtomicU64,
}

impl Shared {
    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether something that completed at `at_us` counts in the measured numbers.
    pub fn measuring(&self, at_us: u64) -> bool {
        at_us >= self.measure_from_us.load(Ordering::Relaxed) && at_us < self.measure_until_us.load(Ordering::Relaxed)
    }
}

/// A short name for a failed exchange: `timeout`, `connect`, `body` or `error`.
pub(crate) fn transport_error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "error"
    }
}

/// `pause` ± 20%, so that retries of many tasks spread out.
pub(crate) fn jitter(pause: Duration) -> Duration {
    pause.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}
