//! Per-ISPB request rate limits (SPEC.md §2.4): one governor token bucket per ISPB,
//! its rate and burst from the tenant's settings (the configured defaults for a
//! tenant that does not exist yet), so one ISPB's burst never takes another's
//! capacity. Requests whose path names no valid ISPB share one bucket of the
//! defaults. The node that serves a request counts it (a forwarded request is
//! counted by the shard leader, once).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use parking_lot::RwLock;
use storage::Ispb;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// What a rate-limit check says, for the `RateLimit-*` headers and the 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateVerdict {
    /// The bucket size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// `Some(seconds)` when the request is over the limit (`Retry-After`, ≥ 1).
    pub retry_after_secs: Option<u64>,
}

/// A tenant's rate: requests per second and bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

struct TenantBucket {
    rate: Rate,
    bucket: Bucket,
}

/// The buckets of every ISPB this node served.
pub struct RateLimits {
    defaults: Rate,
    buckets: RwLock<HashMap<Ispb, Arc<TenantBucket>>>,
    unkeyed: TenantBucket,
}

impl RateLimits {
    /// Buckets with `defaults` for tenants without settings and for invalid paths.
    pub fn new(defaults: Rate) -> RateLimits {
        RateLimits { defaults, buckets: RwLock::default(), unkeyed: TenantBucket::new(defaults) }
    }

    /// Counts one request of `ispb` (`None`: a path without a valid ISPB), whose
    /// tenant's rate is `rate` (`None`: no such tenant yet, the defaults).
    pub fn check(&self, ispb: Option<&Ispb>, rate: Option<Rate>) -> RateVerdict {
        let Some(ispb) = ispb else { return self.unkeyed.check() };
        let rate = rate.unwrap_or(self.defaults);
        if let Some(bucket) = self.buckets.read().get(ispb)
            && bucket.rate == rate
        {
            return bucket.check();
        }
        let bucket = {
            let mut buckets = self.buckets.write();
            let entry = buckets.entry(*ispb).or_insert_with(|| Arc::new(TenantBucket::new(rate)));
            if entry.rate != rate {
                // The tenant's settings changed: a new bucket with the new rate.
                *entry = Arc::new(TenantBucket::new(rate));
            }
            entry.clone()
        };
        bucket.check()
    }
}

impl TenantBucket {
    fn new(rate: Rate) -> TenantBucket {
        let per_sec = NonZeroU32::new(rate.per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_sec);
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        TenantBucket { rate, bucket: RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>() }
    }

    fn check(&self) -> RateVerdict {
        let limit = NonZeroU32::new(self.rate.burst).unwrap_or(NonZeroU32::MIN).get();
        let per_token = Duration::from_secs(1) / self.rate.per_sec.max(1);
        match self.bucket.check() {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let reset = per_token * (limit.saturating_sub(remaining));
                RateVerdict { limit, remaining, reset_secs: ceil_secs(reset), retry_after_secs: None }
            }
            Err(not_until) => {
                // The bucket's own clock: building a new one runs CPUID, which a
                // hypervisor traps (it was a fifth of the cost of a refusal).
                let wait = not_until.wait_time_from(self.bucket.clock().now());
                RateVerdict {
                    limit,
                    remaining: 0,
                    reset_secs: ceil_secs(per_token * limit),
                    retry_after_secs: Some(ceil_secs(wait).max(1)),
                }
            }
        }
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ispb(text: &str) -> Ispb {
        Ispb::parse(text).expect("ISPB")
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_an_integer_retry_after() {
        let limits = RateLimits::new(Rate { per_sec: 1, burst: 3 });
        let a = ispb("12345678");
        let verdicts: Vec<RateVerdict> = (0..4).map(|_| limits.check(Some(&a), None)).collect();
        assert_eq!(verdicts.iter().map(|v| v.remaining).collect::<Vec<_>>(), vec![2, 1, 0, 0]);
        assert!(verdicts[..3].iter().all(|v| v.retry_after_secs.is_none() && v.limit == 3));
        assert_eq!(verdicts[3].retry_after_secs, Some(1));
    }

    #[test]
    fn one_ispb_over_its_limit_leaves_another_untouched() {
        let limits = RateLimits::new(Rate { per_sec: 1, burst: 2 });
        let (a, b) = (ispb("12345678"), ispb("87654321"));
        for _ in 0..10 {
            limits.check(Some(&a), None);
        }
        assert!(limits.check(Some(&a), None).retry_after_secs.is_some());
        let other = limits.check(Some(&b), None);
        assert_eq!((other.remaining, other.retry_after_secs), (1, None));
    }

    #[test]
    fn a_changed_tenant_rate_takes_effect() {
        let limits = RateLimits::new(Rate { per_sec: 1, burst: 1 });
        let a = ispb("12345678");
        limits.check(Some(&a), None);
        assert!(limits.check(Some(&a), None).retry_after_secs.is_some());
        let raised = limits.check(Some(&a), Some(Rate { per_sec: 100, burst: 50 }));
        assert_eq!((raised.limit, raised.retry_after_secs), (50, None));
    }
}
