//! Load shedding (SPEC.md §2.4): the node counts the requests it is working on and
//! refuses new ones above `listeners.max_in_flight` with 503 instead of queueing
//! them, so latency cannot grow without bound. A long poll that only waits for
//! messages — or a forwarded request waiting for the leader's answer — is not
//! working: it steps out of the count while it waits (`Load::waiting`). Only new work
//! is refused — appends and stream opens; the reads and closes of open streams (at
//! most six per ISPB, each confirming work done) are counted but always admitted
//! (`Load::enter`), so a loaded node keeps draining what it already handed out.
//!
//! Below that fixed ceiling, new work is also admitted by its latency
//! (`listeners.shed_latency_ms`): `Admission` keeps a limit on the new-work requests
//! served at once and moves it every 100 ms window — down by a quarter when even the
//! fastest request of the window took longer than the target (a standing queue, as
//! CoDel reads it), up by a sixteenth otherwise — so that under overload the node
//! serves fewer requests at once, promptly, and refuses the rest, instead of serving
//! all of them late.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The node's in-flight count and its limit: admitted requests minus those that
/// wait (two counters, so a wait outside an admitted request can never wrap the
/// count around).
#[derive(Debug)]
pub struct Load {
    admitted: AtomicUsize,
    waiting: AtomicUsize,
    limit: usize,
    shed: AtomicU64,
    admission: Admission,
}

/// A request being worked on; leaves the count when dropped (new work also reports
/// how long it worked to the admission limit).
#[derive(Debug)]
pub struct Working {
    load: Arc<Load>,
    new_work: Option<NewWork>,
}

/// When an admitted new-work request started, and how long it has waited since
/// (nanoseconds): its waits are neither work nor latency.
#[derive(Clone, Debug)]
struct NewWork {
    since: Instant,
    waited_ns: Arc<AtomicU64>,
}

tokio::task_local! {
    /// The new-work request the running task serves (see `Working::scope`).
    static SERVING: NewWork;
}

/// How often the admission limit moves.
const WINDOW: Duration = Duration::from_millis(100);
/// The admission limit never goes below this many new-work requests at once.
const FLOOR: usize = 16;

/// The latency-driven limit on new work served at once.
#[derive(Debug)]
struct Admission {
    /// Zero: off (only the fixed ceiling applies).
    target: Duration,
    ceiling: usize,
    serving: AtomicUsize,
    limit: AtomicUsize,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    fastest: Option<Duration>,
}

impl Admission {
    fn new(target: Duration, ceiling: usize) -> Admission {
        Admission {
            target,
            ceiling,
            serving: AtomicUsize::new(0),
            limit: AtomicUsize::new(ceiling),
            window: Mutex::new(Window { started: Instant::now(), fastest: None }),
        }
    }

    fn try_start(&self) -> bool {
        if self.target.is_zero() {
            return true;
        }
        let before = self.serving.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit.load(Ordering::Acquire) {
            self.serving.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// An admitted request starts waiting: it leaves the count meanwhile.
    fn pause(&self) {
        if !self.target.is_zero() {
            self.serving.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The waiting request is back at work.
    fn resume(&self) {
        if !self.target.is_zero() {
            self.serving.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn finish(&self, took: Duration, now: Instant) {
        if self.target.is_zero() {
            return;
        }
        self.serving.fetch_sub(1, Ordering::AcqRel);
        let mut window = self.window.lock();
        window.fastest = Some(window.fastest.map_or(took, |f| f.min(took)));
        if now.duration_since(window.started) < WINDOW {
            return;
        }
        let limit = self.limit.load(Ordering::Acquire);
        let next = if window.fastest.is_some_and(|f| f > self.target) {
            (limit - limit / 4).max(FLOOR.min(self.ceiling))
        } else {
            (limit + (limit / 16).max(1)).min(self.ceiling)
        };
        self.limit.store(next, Ordering::Release);
        *window = Window { started: now, fastest: None };
    }
}

/// A request that waits without working; back in the count when dropped.
#[derive(Debug)]
pub struct Waiting<'a> {
    load: &'a Load,
    /// The new-work request waiting, and since when.
    new_work: Option<(NewWork, Instant)>,
}

impl Load {
    /// At most `limit` requests worked on at once; with a non-zero
    /// `new_work_latency`, new work is also admitted by its latency.
    pub fn new(limit: usize, new_work_latency: Duration) -> Arc<Load> {
        Arc::new(Load {
            admitted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            limit,
            shed: AtomicU64::new(0),
            admission: Admission::new(new_work_latency, limit),
        })
    }

    /// Admits new work, or `None` (and counts it as shed) when the node is full or
    /// its new work is being served late.
    pub fn admit(self: &Arc<Self>) -> Option<Working> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        if before.saturating_sub(self.waiting.load(Ordering::Acquire)) >= self.limit || !self.admission.try_start() {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let new_work = NewWork { since: Instant::now(), waited_ns: Arc::new(AtomicU64::new(0)) };
        Some(Working { load: self.clone(), new_work: Some(new_work) })
    }

    /// Counts a request that is never refused (it finishes work already admitted:
    /// the read or close of an open stream) while it works.
    pub fn enter(self: &Arc<Self>) -> Working {
        self.admitted.fetch_add(1, Ordering::AcqRel);
        Working { load: self.clone(), new_work: None }
    }

    /// How many new-work requests may be served at once now.
    pub fn admission_limit(&self) -> usize {
        self.admission.limit.load(Ordering::Acquire)
    }

    /// Marks the calling request as waiting until the guard drops. A new-work
    /// request (run under `Working::scope`) also leaves the admission count, and
    /// its wait does not count as latency.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let new_work = SERVING.try_with(NewWork::clone).ok().map(|work| {
            self.admission.pause();
            (work, Instant::now())
        });
        Waiting { load: self, new_work }
    }

    /// Requests being worked on now.
    pub fn in_flight(&self) -> usize {
        let waiting = self.waiting.load(Ordering::Acquire);
        self.admitted.load(Ordering::Acquire).saturating_sub(waiting)
    }

    /// Requests refused so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl Working {
    /// Runs `work` (the request) so that its waits (`Load::waiting`) are known to be
    /// this request's.
    pub async fn scope<F: std::future::Future>(&self, work: F) -> F::Output {
        match &self.new_work {
            Some(new_work) => SERVING.scope(new_work.clone(), work).await,
            None => work.await,
        }
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.load.admitted.fetch_sub(1, Ordering::AcqRel);
        if let Some(work) = &self.new_work {
            let now = Instant::now();
            let waited = Duration::from_nanos(work.waited_ns.load(Ordering::Acquire));
            self.load.admission.finish(now.duration_since(work.since).saturating_sub(waited), now);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.load.waiting.fetch_sub(1, Ordering::AcqRel);
        if let Some((work, since)) = &self.new_work {
            work.waited_ns.fetch_add(since.elapsed().as_nanos() as u64, Ordering::AcqRel);
            self.load.admission.resume();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_the_limit_are_shed_and_waiting_ones_do_not_count() {
        let load = Load::new(2, Duration::ZERO);
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

    /// Ends `n` new-work requests of `took` each, the last one a window later.
    fn serve(admission: &Admission, n: usize, took: Duration, start: Instant) -> Instant {
        for _ in 0..n {
            assert!(admission.try_start());
        }
        for _ in 1..n {
            admission.finish(took, start);
        }
        let end = start + WINDOW;
        admission.finish(took, end);
        end
    }

    #[test]
    fn the_admission_limit_falls_while_even_the_fastest_is_late_and_climbs_back_when_fast() {
        let target = Duration::from_millis(20);
        let admission = Admission::new(target, 256);
        let mut now = Instant::now();
        now = serve(&admission, 8, Duration::from_millis(5), now);
        assert_eq!(admission.limit.load(Ordering::Acquire), 256, "fast: at the ceiling it stays");
        now = serve(&admission, 8, Duration::from_millis(30), now);
        assert_eq!(admission.limit.load(Ordering::Acquire), 192, "every request late: down a quarter");
        for _ in 0..20 {
            now = serve(&admission, 4, Duration::from_millis(40), now);
        }
        assert_eq!(admission.limit.load(Ordering::Acquire), FLOOR, "never below the floor");
        let at_floor: Vec<bool> = (0..FLOOR + 1).map(|_| admission.try_start()).collect();
        assert_eq!(at_floor.iter().filter(|a| **a).count(), FLOOR, "over the limit, new work is refused");
        for _ in 0..FLOOR {
            admission.finish(Duration::from_millis(1), now);
        }
        // One fast request in a window is enough: the queue is gone.
        now = serve(&admission, 1, Duration::from_millis(1), now);
        let climbed = admission.limit.load(Ordering::Acquire);
        assert!(climbed > FLOOR, "{climbed}");
        for _ in 0..100 {
            now = serve(&admission, 1, Duration::from_millis(1), now);
        }
        assert_eq!(admission.limit.load(Ordering::Acquire), 256, "back at the ceiling");
    }

    #[test]
    fn with_no_target_only_the_ceiling_sheds() {
        let load = Load::new(3, Duration::ZERO);
        let held: Vec<Working> = (0..3).map(|_| load.admit().expect("under the ceiling")).collect();
        assert!(load.admit().is_none());
        drop(held);
        assert_eq!(load.admission_limit(), 3);
    }

    #[tokio::test]
    async fn a_new_work_request_that_waits_leaves_the_admission_count_and_its_wait_is_not_latency() {
        let load = Load::new(64, Duration::from_millis(20));
        let working = load.admit().expect("admitted");
        let (limit, serving_while_waiting) = working
            .scope(async {
                let _waiting = load.waiting();
                let serving = load.admission.serving.load(Ordering::Acquire);
                tokio::time::sleep(WINDOW + Duration::from_millis(50)).await;
                (load.admission_limit(), serving)
            })
            .await;
        assert_eq!(serving_while_waiting, 0, "a waiting open is not served work");
        drop(working);
        assert_eq!(limit, 64);
        assert_eq!(load.admission_limit(), 64, "150 ms of waiting is not 150 ms of latency");

        // The same time spent working is.
        let working = load.admit().expect("admitted");
        working.scope(async { std::thread::sleep(WINDOW + Duration::from_millis(50)) }).await;
        drop(working);
        assert_eq!(load.admission_limit(), 48, "a window whose fastest request was late lowers the limit");
    }
}
