//! The wait of a long poll: until the ISPB is woken (an append, a batch returned for
//! redelivery, a claim released), the poll's deadline, or shutdown — whichever comes
//! first — never by sleeping and re-reading. Deadlines are spread between 90 % and
//! 100 % of `long_poll_wait` so polls opened together do not expire together.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::notify::Subscription;

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// The ISPB was woken before the deadline: try to read again.
    Woken,
    /// The deadline passed: answer 204.
    Deadline,
    /// The node shuts down: answer 204 now.
    Shutdown,
}

/// One long poll's deadline and the node's shutdown signal.
pub struct LongPoll<'a> {
    deadline: Instant,
    shutdown: &'a CancellationToken,
}

impl<'a> LongPoll<'a> {
    /// A poll that gives up between 90 % and 100 % of `wait` from now (SPEC.md: "up
    /// to" the wait), so that polls opened together — by a client fleet, after a
    /// restart or a failover — do not all expire, answer and come back in one instant.
    pub fn new(wait: Duration, shutdown: &'a CancellationToken) -> LongPoll<'a> {
        let early = (wait / 10).mul_f64(rand::random::<f64>());
        LongPoll { deadline: Instant::now() + wait - early, shutdown }
    }

    /// When the poll gives up.
    #[cfg(test)]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Waits for a wake-up of `wake` (subscribed before the state was last read, so
    /// no wake in between is missed), the deadline or shutdown.
    pub async fn wait(&self, wake: &mut Subscription) -> WaitEnd {
        tokio::select! {
            () = wake.woken() => {
                if Instant::now() >= self.deadline { WaitEnd::Deadline } else { WaitEnd::Woken }
            }
            () = tokio::time::sleep_until(self.deadline) => WaitEnd::Deadline,
            () = self.shutdown.cancelled() => WaitEnd::Shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::notify::Notifier;
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn deadlines_fall_between_ninety_and_a_hundred_percent_of_the_wait() {
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        let offsets: Vec<Duration> = (0..200).map(|_| LongPoll::new(WAIT, &shutdown).deadline() - start).collect();
        assert!(offsets.iter().all(|d| *d >= WAIT.mul_f64(0.9) && *d <= WAIT), "{offsets:?}");
        let spread = offsets.iter().max().expect("some").saturating_sub(*offsets.iter().min().expect("some"));
        assert!(spread > WAIT / 20, "deadlines are spread, not equal: {spread:?}");
    }

    fn ispb() -> storage::Ispb {
        storage::Ispb::parse("32074986").expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_happening_the_wait_ends_at_the_deadline() {
        let shutdown = CancellationToken::new();
        let notifier = Notifier::default();
        let mut wake = notifier.subscribe(&ispb());
        let poll = LongPoll::new(WAIT, &shutdown);
        let start = Instant::now();
        assert_eq!(poll.wait(&mut wake).await, WaitEnd::Deadline);
        let late = Instant::now() - poll.deadline();
        assert!(late < Duration::from_millis(2), "not earlier, and late only by the timer's 1 ms tick: {late:?}");
        assert!(Instant::now() - start >= WAIT.mul_f64(0.9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_ends_the_wait_at_once() {
        let shutdown = CancellationToken::new();
        let notifier = Arc::new(Notifier::default());
        let mut wake = notifier.subscribe(&ispb());
        let poll = LongPoll::new(WAIT, &shutdown);
        let start = Instant::now();
        let waker = {
            let notifier = notifier.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                notifier.wake_one(&ispb());
            })
        };
        assert_eq!(poll.wait(&mut wake).await, WaitEnd::Woken);
        assert_eq!(Instant::now() - start, Duration::from_millis(700));
        waker.await.expect("waker");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_that_came_before_waiting_is_not_missed() {
        let shutdown = CancellationToken::new();
        let notifier = Notifier::default();
        let mut wake = notifier.subscribe(&ispb());
        notifier.wake_one(&ispb());
        let start = Instant::now();
        assert_eq!(LongPoll::new(WAIT, &shutdown).wait(&mut wake).await, WaitEnd::Woken);
        assert_eq!(Instant::now(), start, "no time passed");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_every_wait_at_once() {
        let shutdown = CancellationToken::new();
        let notifier = Notifier::default();
        let mut wake = notifier.subscribe(&ispb());
        let poll = LongPoll::new(WAIT, &shutdown);
        let start = Instant::now();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        assert_eq!(poll.wait(&mut wake).await, WaitEnd::Shutdown);
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
    }
}
