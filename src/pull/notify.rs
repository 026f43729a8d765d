//! `Notifier`: wakes the long polls of an ISPB when messages become available there
//! (an append, or a batch returned for redelivery). The state machine reports the
//! ISPBs after each applied write; waiting pulls hold a `watch` receiver, so a wake
//! between "nothing available" and "start waiting" is never missed. It counts its
//! wake-ups and the long polls they reached, for the metrics and the load tool's
//! cost per delivered message.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use storage::Ispb;
use tokio::sync::watch;

/// Per-ISPB wake-up channels.
#[derive(Default)]
pub struct Notifier {
    channels: RwLock<HashMap<Ispb, watch::Sender<u64>>>,
    wakes: AtomicU64,
    reached: AtomicU64,
}

/// Wake-ups sent so far: ISPBs woken, and the subscribed long polls each reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeCounts {
    pub wakes: u64,
    pub polls_reached: u64,
}

impl Notifier {
    /// A receiver that sees every wake of `ispb` from now on.
    pub fn subscribe(&self, ispb: &Ispb) -> watch::Receiver<u64> {
        if let Some(sender) = self.channels.read().get(ispb) {
            return sender.subscribe();
        }
        self.channels.write().entry(*ispb).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Wakes every waiter of `ispb`.
    pub fn wake_one(&self, ispb: &Ispb) {
        if let Some(sender) = self.channels.read().get(ispb) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            self.reached.fetch_add(sender.receiver_count() as u64, Ordering::Relaxed);
            sender.send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    /// The wake-ups sent since the node started.
    pub fn counts(&self) -> WakeCounts {
        WakeCounts { wakes: self.wakes.load(Ordering::Relaxed), polls_reached: self.reached.load(Ordering::Relaxed) }
    }
}

impl raft::ApplyObserver for Notifier {
    fn wake(&self, ispbs: &BTreeSet<Ispb>) {
        for ispb in ispbs {
            self.wake_one(ispb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_after_subscribing_is_seen() {
        let notifier = Notifier::default();
        let ispb = Ispb::parse("32074986").expect("valid");
        let mut rx = notifier.subscribe(&ispb);
        notifier.wake_one(&ispb);
        assert_eq!(notifier.counts(), WakeCounts { wakes: 1, polls_reached: 1 });
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .expect("woken")
            .expect("sender alive");
    }
}
