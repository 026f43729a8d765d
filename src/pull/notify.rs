//! `Notifier`: wakes the long polls of an ISPB when the state machine reports that
//! messages became available there (an append, a batch returned for redelivery) or
//! that its streams changed (a stream closed, the tenant deleted, the cursor moved).
//!
//! Waking is as narrow as progress allows. Messages becoming available wake **one**
//! waiting poll, the longest waiting (`Notify::notify_one`); the read that claims them
//! wakes the next one when it leaves some unclaimed (`claims`), so a single-message
//! append costs one wake-up, not one per open stream. A change of streams wakes every
//! waiting poll, each of which must look at its own stream. A wake that comes between
//! "nothing available" and "start waiting" is never missed: a poll registers
//! (`Subscription`) before it reads the state, and a wake-up handed to a poll that
//! leaves without taking it (its client went away, its deadline came first) passes to
//! the next waiting poll. It counts its wake-ups and the polls they reached, for the
//! metrics and the load tool's cost per delivered message.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use storage::{Ispb, Wake};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// One ISPB's waiting polls.
#[derive(Default)]
struct Channel {
    notify: Arc<Notify>,
    /// Polls registered now (for the count of polls a wake-up reached).
    waiting: Arc<AtomicUsize>,
}

/// Per-ISPB wake-ups.
#[derive(Default)]
pub struct Notifier {
    channels: RwLock<HashMap<Ispb, Channel>>,
    wakes: AtomicU64,
    reached: AtomicU64,
}

/// Wake-ups sent so far: ISPBs woken, and the registered long polls each reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeCounts {
    pub wakes: u64,
    pub polls_reached: u64,
}

/// A poll's place among its ISPB's waiting polls, from the moment it subscribed.
pub struct Subscription {
    notified: Pin<Box<OwnedNotified>>,
    waiting: Arc<AtomicUsize>,
}

impl Subscription {
    /// Resolves at the first wake-up for this poll since it subscribed.
    pub async fn woken(&mut self) {
        self.notified.as_mut().await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Notifier {
    /// Registers a poll of `ispb`: it sees every wake-up of the ISPB's streams from
    /// now on, and takes its turn for wake-ups of available messages.
    pub fn subscribe(&self, ispb: &Ispb) -> Subscription {
        let known = self.channels.read().get(ispb).map(|c| (c.notify.clone(), c.waiting.clone()));
        let (notify, waiting) = known.unwrap_or_else(|| {
            let mut channels = self.channels.write();
            let channel = channels.entry(*ispb).or_default();
            (channel.notify.clone(), channel.waiting.clone())
        });
        waiting.fetch_add(1, Ordering::Relaxed);
        let mut notified = Box::pin(notify.notified_owned());
        // In the queue now, before the caller reads the state: no wake-up is missed.
        notified.as_mut().enable();
        Subscription { notified, waiting }
    }

    /// Wakes the longest-waiting poll of `ispb` (or the next poll to wait, if none
    /// waits now): messages are available for one read.
    pub fn wake_one(&self, ispb: &Ispb) {
        if let Some(channel) = self.channels.read().get(ispb) {
            self.count(channel.waiting.load(Ordering::Relaxed).min(1));
            channel.notify.notify_one();
        }
    }

    /// Wakes every waiting poll of `ispb`: its streams changed.
    pub fn wake_all(&self, ispb: &Ispb) {
        if let Some(channel) = self.channels.read().get(ispb) {
            self.count(channel.waiting.load(Ordering::Relaxed));
            channel.notify.notify_waiters();
        }
    }

    fn count(&self, reached: usize) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.reached.fetch_add(reached as u64, Ordering::Relaxed);
    }

    /// The wake-ups sent since the node started.
    pub fn counts(&self) -> WakeCounts {
        WakeCounts { wakes: self.wakes.load(Ordering::Relaxed), polls_reached: self.reached.load(Ordering::Relaxed) }
    }
}

impl raft::ApplyObserver for Notifier {
    fn wake(&self, wakes: &BTreeMap<Ispb, Wake>) {
        for (ispb, why) in wakes {
            match why {
                Wake::Available => self.wake_one(ispb),
                Wake::Streams => self.wake_all(ispb),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SOON: Duration = Duration::from_millis(50);

    fn ispb() -> Ispb {
        Ispb::parse("32074986").expect("valid")
    }

    async fn is_woken(subscription: &mut Subscription) -> bool {
        tokio::time::timeout(SOON, subscription.woken()).await.is_ok()
    }

    #[tokio::test]
    async fn available_messages_wake_one_poll_the_longest_waiting() {
        let notifier = Notifier::default();
        let mut first = notifier.subscribe(&ispb());
        let mut second = notifier.subscribe(&ispb());
        notifier.wake_one(&ispb());
        assert!(is_woken(&mut first).await, "the longest waiting");
        assert!(!is_woken(&mut second).await, "only one");
        assert_eq!(notifier.counts(), WakeCounts { wakes: 1, polls_reached: 1 });
    }

    #[tokio::test]
    async fn a_change_of_streams_wakes_every_poll() {
        let notifier = Notifier::default();
        let mut polls: Vec<_> = (0..6).map(|_| notifier.subscribe(&ispb())).collect();
        notifier.wake_all(&ispb());
        for poll in &mut polls {
            assert!(is_woken(poll).await);
        }
        assert_eq!(notifier.counts(), WakeCounts { wakes: 1, polls_reached: 6 });
    }

    #[tokio::test]
    async fn a_wake_after_subscribing_and_before_waiting_is_not_missed() {
        let notifier = Notifier::default();
        let mut poll = notifier.subscribe(&ispb());
        notifier.wake_one(&ispb());
        notifier.wake_all(&ispb());
        assert!(is_woken(&mut poll).await);
    }

    #[tokio::test]
    async fn a_wake_left_by_a_poll_that_went_away_passes_to_the_next() {
        let notifier = Notifier::default();
        let gone = notifier.subscribe(&ispb());
        let mut next = notifier.subscribe(&ispb());
        notifier.wake_one(&ispb());
        drop(gone);
        assert!(is_woken(&mut next).await, "the wake-up was not lost with the poll");
    }

    #[tokio::test]
    async fn an_ispb_nobody_waits_on_is_not_woken_and_others_are_untouched() {
        let notifier = Notifier::default();
        let other = Ispb::parse("99999A03").expect("valid");
        let mut poll = notifier.subscribe(&other);
        notifier.wake_one(&ispb());
        notifier.wake_all(&ispb());
        assert!(!is_woken(&mut poll).await);
        assert_eq!(notifier.counts(), WakeCounts::default(), "no channel, nothing sent");
    }
}
