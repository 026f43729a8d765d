//! `StreamActivity`: the leader-local, unreplicated view of what each open stream is
//! doing — when it last received a request, and whether a request is advancing it
//! right now. It gives `streamBusy` (two requests never advance one stream at once)
//! and tells the sweeper which streams went idle. It starts empty after a restart or
//! a leader change: the sweeper then dates a stream's last request from its
//! replicated state (`sweeper::idle_since`), so elections do not restart idle periods.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use storage::{Ispb, StreamId};
use tokio::time::Instant;

use crate::error::Error;

#[derive(Clone, Copy)]
struct Activity {
    last_seen: Instant,
    advancing: bool,
}

/// Activity of every stream this node serves.
#[derive(Default)]
pub struct StreamActivity {
    streams: Mutex<HashMap<(Ispb, StreamId), Activity>>,
}

impl StreamActivity {
    /// Marks a request on the stream (also a read-only retry).
    pub fn touch(&self, ispb: Ispb, stream: StreamId) {
        let now = Instant::now();
        self.streams
            .lock()
            .entry((ispb, stream))
            .and_modify(|a| a.last_seen = now)
            .or_insert(Activity { last_seen: now, advancing: false });
    }

    /// Claims the right to advance the stream until the guard drops; `streamBusy`
    /// when another request holds it.
    pub fn begin_advance(self: &Arc<Self>, ispb: Ispb, stream: StreamId) -> Result<AdvanceGuard, Error> {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        let entry = streams.entry((ispb, stream)).or_insert(Activity { last_seen: now, advancing: false });
        if entry.advancing {
            return Err(Error::StreamBusy);
        }
        *entry = Activity { last_seen: now, advancing: true };
        Ok(AdvanceGuard { activity: Arc::clone(self), key: (ispb, stream) })
    }

    /// Whether the stream has been idle (no request, none in flight) for `timeout`.
    /// A stream this node has not seen a request of yet is taken as last seen at
    /// `seen_before` (what its replicated state tells).
    pub fn is_idle(&self, ispb: Ispb, stream: StreamId, timeout: Duration, seen_before: Instant) -> bool {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        let entry = streams.entry((ispb, stream)).or_insert(Activity { last_seen: seen_before, advancing: false });
        !entry.advancing && now.duration_since(entry.last_seen) >= timeout
    }

    /// Forgets a closed stream.
    pub fn forget(&self, ispb: Ispb, stream: StreamId) {
        self.streams.lock().remove(&(ispb, stream));
    }

    /// Forgets every stream for which `open` is false.
    pub fn retain_open(&self, mut open: impl FnMut(&Ispb, StreamId) -> bool) {
        self.streams.lock().retain(|(ispb, stream), _| open(ispb, *stream));
    }
}

/// Held while a request advances a stream.
pub struct AdvanceGuard {
    activity: Arc<StreamActivity>,
    key: (Ispb, StreamId),
}

impl Drop for AdvanceGuard {
    fn drop(&mut self) {
        if let Some(entry) = self.activity.streams.lock().get_mut(&self.key) {
            entry.advancing = false;
            entry.last_seen = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ispb() -> Ispb {
        Ispb::parse("32074986").expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn one_advancer_at_a_time_and_busy_streams_are_never_idle() {
        let activity = Arc::new(StreamActivity::default());
        let now = Instant::now();
        let guard = activity.begin_advance(ispb(), 1).expect("free");
        assert!(matches!(activity.begin_advance(ispb(), 1), Err(Error::StreamBusy)));
        assert!(!activity.is_idle(ispb(), 1, Duration::ZERO, now));
        drop(guard);
        assert!(activity.begin_advance(ispb(), 1).is_ok());
        assert!(activity.is_idle(ispb(), 1, Duration::ZERO, now));
        assert!(!activity.is_idle(ispb(), 2, Duration::from_secs(60), now));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_goes_idle_a_timeout_after_its_last_request() {
        let activity = Arc::new(StreamActivity::default());
        let timeout = Duration::from_secs(15);
        activity.touch(ispb(), 1);
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(!activity.is_idle(ispb(), 1, timeout, Instant::now()));
        activity.touch(ispb(), 1);
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(!activity.is_idle(ispb(), 1, timeout, Instant::now()), "the second request restarted the period");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(activity.is_idle(ispb(), 1, timeout, Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unseen_stream_is_dated_by_its_replicated_activity() {
        let activity = Arc::new(StreamActivity::default());
        let timeout = Duration::from_secs(15);
        tokio::time::advance(Duration::from_secs(60)).await;
        let long_ago = Instant::now() - Duration::from_secs(20);
        assert!(activity.is_idle(ispb(), 1, timeout, long_ago), "idle since 20 s by its replicated state");
        let lately = Instant::now() - Duration::from_secs(5);
        assert!(!activity.is_idle(ispb(), 2, timeout, lately));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(activity.is_idle(ispb(), 2, timeout, Instant::now()), "the first date sticks");
    }
}
