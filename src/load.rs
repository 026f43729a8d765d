//! Load shedding (SPEC.md §2.4): the node counts the requests it is working on and
//! refuses new ones above `listeners.max_in_flight` with 503 instead of queueing
//! them, so latency cannot grow without bound. A long poll that only waits for
//! messages — or a forwarded request waiting for the leader's answer — is not
//! working: it steps out of the count while it waits (`Load::waiting`). Only new work
//! is refused — appends and stream opens; the reads and closes of open streams (at
//! most six per ISPB, each confirming work done) are counted but always admitted
//! (`Load::enter`), so a loaded node keeps draining what it already handed out.
//!
//! Appends have a second, smaller bound, `listeners.max_in_flight_appends`, counted
//! on the node that serves them (`Load::admit_append`): an admitted append waits for
//! its Raft commit behind every other admitted one, so the number admitted at once,
//! not the node-wide count, is what bounds an append's latency under overload.

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
    appends: AtomicUsize,
    append_limit: usize,
    shed: AtomicU64,
}

/// A request being worked on; leaves the count when dropped.
#[derive(Debug)]
pub struct Working {
    load: Arc<Load>,
}

/// An append being served; leaves the append count when dropped.
#[derive(Debug)]
pub struct Appending {
    load: Arc<Load>,
}

/// A request that waits without working; back in the count when dropped.
#[derive(Debug)]
pub struct Waiting<'a> {
    load: &'a Load,
}

impl Load {
    /// Bounds of `limit` requests at work and `append_limit` appends served at once.
    pub fn new(limit: usize, append_limit: usize) -> Arc<Load> {
        Arc::new(Load {
            admitted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            limit,
            appends: AtomicUsize::new(0),
            append_limit,
            shed: AtomicU64::new(0),
        })
    }

    /// Admits an append served here, or `None` (and counts it as shed) when
    /// `append_limit` appends are being served.
    pub fn admit_append(self: &Arc<Self>) -> Option<Appending> {
        if self.appends.fetch_add(1, Ordering::AcqRel) >= self.append_limit {
            self.appends.fetch_sub(1, Ordering::AcqRel);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Appending { load: self.clone() })
    }

    /// Appends being served now.
    pub fn appends_now(&self) -> usize {
        self.appends.load(Ordering::Acquire)
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

impl Drop for Appending {
    fn drop(&mut self) {
        self.load.appends.fetch_sub(1, Ordering::AcqRel);
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
        let load = Load::new(2, 8);
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

    #[test]
    fn appends_over_their_own_limit_are_shed_whatever_the_node_wide_count() {
        let load = Load::new(100, 2);
        let (a, b) = (load.admit_append().expect("first"), load.admit_append().expect("second"));
        assert!(load.admit_append().is_none(), "the third append is shed");
        assert_eq!((load.shed(), load.appends_now()), (1, 2));
        assert!(load.admit().is_some(), "other work is still admitted");
        drop(a);
        assert!(load.admit_append().is_some(), "a finished append frees its place");
        drop(b);
    }
}
