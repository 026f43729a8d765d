//! `LogThrottle`: at most one log line per interval for a condition that repeats in
//! bursts (every request answered 503 while a shard elects a leader, every forward to
//! a node that just died), carrying how many occurrences the line stands for. The
//! log stays readable during a failover instead of growing by thousands of lines a
//! second.

use std::sync::atomic::{AtomicU64, Ordering};

/// One throttled condition; usually a `static`.
pub struct LogThrottle {
    /// Earliest epoch millisecond at which the next line may be written.
    next_ms: AtomicU64,
    /// Occurrences since the last line written.
    pending: AtomicU64,
}

impl LogThrottle {
    /// A throttle that admits its first occurrence.
    pub const fn new() -> LogThrottle {
        LogThrottle { next_ms: AtomicU64::new(0), pending: AtomicU64::new(0) }
    }

    /// Counts one occurrence at `now_ms`; `Some(n)` when a line should be written now,
    /// `n` being the occurrences it stands for (this one included), at most one per
    /// `every_ms`.
    pub fn admit(&self, now_ms: u64, every_ms: u64) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms < next {
            return None;
        }
        self.next_ms.compare_exchange(next, now_ms + every_ms, Ordering::Relaxed, Ordering::Relaxed).ok()?;
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_what_it_stands_for() {
        let throttle = LogThrottle::new();
        assert_eq!(throttle.admit(10_000, 1_000), Some(1), "the first occurrence is logged");
        for ms in 10_001..10_500 {
            assert_eq!(throttle.admit(ms, 1_000), None);
        }
        assert_eq!(throttle.admit(10_999, 1_000), None);
        assert_eq!(throttle.admit(11_000, 1_000), Some(501), "500 suppressed plus this one");
        assert_eq!(throttle.admit(15_000, 1_000), Some(1));
    }
}
