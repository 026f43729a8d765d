//! `StreamActivity`: the leader-local, unreplicated view of what each open stream is
//! doing — when it last received a request, and whether a request is advancing it
//! right now. It gives `streamBusy` (two requests never advance one stream at once)
//! and tells the sweeper which streams went idle. It is rebuilt from nothing after a
//! restart or failover: a stream first seen by the sweeper gets a full idle period.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use storage::{Ispb, StreamId};

use crate::error::ApiError;

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
    pub fn begin_advance(self: &Arc<Self>, ispb: Ispb, stream: StreamId) -> Result<AdvanceGuard, ApiError> {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        let entry = streams.entry((ispb, stream)).or_insert(Activity { last_seen: now, advancing: false });
        if entry.advancing {
            return Err(ApiError::StreamBusy);
        }
        *entry = Activity { last_seen: now, advancing: true };
        Ok(AdvanceGuard { activity: Arc::clone(self), key: (ispb, stream) })
    }

    /// Whether the stream has been idle (no request, none in flight) for `timeout`.
    /// A stream never seen before starts its idle period now.
    pub fn is_idle(&self, ispb: Ispb, stream: StreamId, timeout: Duration) -> bool {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        let entry = streams.entry((ispb, stream)).or_insert(Activity { last_seen: now, advancing: false });
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

    #[test]
    fn one_advancer_at_a_time_and_busy_streams_are_never_idle() {
        let activity = Arc::new(StreamActivity::default());
        let ispb = Ispb::parse("32074986").expect("valid");
        let guard = activity.begin_advance(ispb, 1).expect("free");
        assert!(matches!(activity.begin_advance(ispb, 1), Err(ApiError::StreamBusy)));
        assert!(!activity.is_idle(ispb, 1, Duration::ZERO));
        drop(guard);
        assert!(activity.begin_advance(ispb, 1).is_ok());
        assert!(activity.is_idle(ispb, 1, Duration::ZERO));
        assert!(!activity.is_idle(ispb, 2, Duration::from_secs(60)));
    }
}
