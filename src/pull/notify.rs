//! `Notifier`: wakes the long polls of an ISPB when messages become available there
//! (an append, or a batch returned for redelivery). The state machine reports the
//! ISPBs after each applied write; waiting pulls hold a `watch` receiver, so a wake
//! between "nothing available" and "start waiting" is never missed.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;
use storage::Ispb;
use tokio::sync::watch;

/// Per-ISPB wake-up channels.
#[derive(Default)]
pub struct Notifier {
    channels: RwLock<HashMap<Ispb, watch::Sender<u64>>>,
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
            sender.send_modify(|version| *version = version.wrapping_add(1));
        }
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
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .expect("woken")
            .expect("sender alive");
    }
}
