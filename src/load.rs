//! Load shedding (SPEC.md §2.4): the node counts the requests it is working on and
//! refuses new ones above `listeners.max_in_flight` with 503 instead of queueing
//! them, so latency cannot grow without bound. A long poll that only waits for
//! messages — or a forwarded request waiting for the leader's answer — is not
//! working: it steps out of the count while it waits (`Load::waiting`). Only new work
//! is refused — appends and stream opens; the reads and closes of open streams (at
//! most six per ISPB, each confirming work done) are counted but always admitted
//! (`Load::enter`), so a loaded node keeps draining what it already handed out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The node's in-flight count and its limit: admitted requests minus those that
/// wait (two counters, so a wait outside an admitted request can never wrap the
/// count around).
#[derive(Debug)]
pub struct Load {
    admitted: AtomicUsize,
    waiting: AtomicUsize,
    limit: usize,
    shed: AtomicU64,
}

/// A request being worked on; leaves the count when dropped.
#[derive(Debug)]
pub struct Working {
    load: Arc<Load>,
}

/// A request that waits without working; back in the count when dropped.
#[derive(Debug)]
pub struct Waiting<'a> {
    load: &'a Load,
}

impl Load {
    pub fn new(limit: usize) -> Arc<Load> {
        Arc::new(Load { admitted: AtomicUsize::new(0), waiting: AtomicUsize::new(0), limit, shed: AtomicU64::new(0) })
    }

    /// Admits a request, or `None` (and counts it as shed) when the node is full.
    pub fn admit(self: &Arc<Self>) -> Option<Working> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        if before.saturating_sub(self.waiting.load(Ordering::Acquire)) >= self.limit {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Working { load: self.clone() })
    }

    /// Counts a request that is never refused (it finishes work already admitted:
    /// the read or close of an open stream) while it works.
    pub fn enter(self: &Arc<Self>) -> Working {
        self.admitted.fetch_add(1, Ordering::AcqRel);
        Working { load: self.clone() }
    }

    /// Marks the calling request as waiting until the guard drops.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting { load: self }
    }

    /// Requests being worked on now.
    pub fn in_flight(&self) -> usize {
        let waiting = self.waiting.load(Ordering::Acquire);
        self.admitted.load(Ordering::Acquire).saturating_sub(waiting)
    }

    /// Requests waiting now (long polls parked until a message or their deadline,
    /// forwarded requests waiting for the leader's answer).
    pub fn waiting_now(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Requests refused so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.load.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.load.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_the_limit_are_shed_and_waiting_ones_do_not_count() {
        let load = Load::new(2);
        let a = load.admit().expect("first");
        let b = load.admit().expect("second");
        assert!(load.admit().is_none(), "the third is shed");
        assert_eq!(load.shed(), 1);
        {
            let _waiting = load.waiting();
            let c = load.admit().expect("a waiting request frees its place");
            assert_eq!(load.in_flight(), 2);
            drop(c);
        }
        assert_eq!(load.in_flight(), 2, "the waiting request is back");
        drop((a, b));
        assert_eq!(load.in_flight(), 0);
    }
}
