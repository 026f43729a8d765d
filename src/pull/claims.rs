//! `ReadClaims`: leader-local bookkeeping that keeps an append from sending every
//! waiting stream of its ISPB into Raft.
//!
//! An append wakes one long poll of its ISPB, and any request on its streams may
//! arrive meanwhile. Without claims each would propose a `Pull`, one would get the
//! messages and the others would commit reads that hand out nothing. Instead a read
//! claims part of what is available and not yet claimed by reads in flight; a read
//! that finds everything claimed goes back to waiting. A claim that leaves messages
//! unclaimed wakes the next waiting poll for them, and when a claimed read hands out
//! less than it claimed (another stream took the messages first, or the read failed
//! or was abandoned), releasing the claim wakes the next one, so nothing available
//! is left without a reader.
//!
//! Claims are only a hint for this node's handlers: the state machine alone decides
//! what a read hands out, so a lost or stale claim can cost a wake-up, never a message.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use storage::Ispb;

use super::notify::Notifier;

/// Messages claimed by reads in flight, per ISPB.
pub struct ReadClaims {
    claimed: Mutex<HashMap<Ispb, u64>>,
    notifier: Arc<Notifier>,
}

/// A read's claim; released when dropped.
pub struct Claim<'a> {
    claims: &'a ReadClaims,
    ispb: Ispb,
    amount: u64,
    handed: Option<u64>,
}

impl ReadClaims {
    /// Claims that release through `notifier`.
    pub fn new(notifier: Arc<Notifier>) -> ReadClaims {
        ReadClaims { claimed: Mutex::new(HashMap::new()), notifier }
    }

    /// Claims up to `limit` of the `available` messages of `ispb` that no read in
    /// flight has claimed; `None` when every available message is already claimed.
    pub fn claim(&self, ispb: Ispb, available: u64, limit: u64) -> Option<Claim<'_>> {
        let mut claimed = self.claimed.lock();
        let already = claimed.get(&ispb).copied().unwrap_or(0);
        let amount = available.saturating_sub(already).min(limit);
        if amount == 0 {
            return None;
        }
        *claimed.entry(ispb).or_insert(0) += amount;
        drop(claimed);
        if available > already + amount {
            // More than this read takes: the next waiting poll takes the rest.
            self.notifier.wake_one(&ispb);
        }
        Some(Claim { claims: self, ispb, amount, handed: None })
    }

    /// Messages of `ispb` claimed by reads in flight.
    #[cfg(test)]
    fn claimed(&self, ispb: &Ispb) -> u64 {
        self.claimed.lock().get(ispb).copied().unwrap_or(0)
    }

    fn release(&self, ispb: &Ispb, amount: u64) {
        let mut claimed = self.claimed.lock();
        if let Some(total) = claimed.get_mut(ispb) {
            *total = total.saturating_sub(amount);
            if *total == 0 {
                claimed.remove(ispb);
            }
        }
    }
}

impl Claim<'_> {
    /// Records how many messages the read handed out.
    pub fn handed(&mut self, count: usize) {
        self.handed = Some(count as u64);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.claims.release(&self.ispb, self.amount);
        let short = self.handed.is_none_or(|handed| handed < self.amount);
        if short {
            self.claims.notifier.wake_one(&self.ispb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ispb() -> Ispb {
        Ispb::parse("32074986").expect("valid")
    }

    #[test]
    fn a_second_reader_finds_the_messages_claimed() {
        let claims = ReadClaims::new(Arc::new(Notifier::default()));
        let first = claims.claim(ispb(), 3, 10).expect("claims three");
        assert_eq!(first.amount, 3);
        assert!(claims.claim(ispb(), 3, 10).is_none(), "all three are claimed");
        let second = claims.claim(ispb(), 25, 10).expect("new messages are unclaimed");
        assert_eq!(second.amount, 10);
        assert_eq!(claims.claimed(&ispb()), 13);
        drop((first, second));
        assert_eq!(claims.claimed(&ispb()), 0);
    }

    async fn is_woken(subscription: &mut super::super::notify::Subscription) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(50), subscription.woken()).await.is_ok()
    }

    #[tokio::test]
    async fn a_read_that_hands_out_less_than_it_claimed_wakes_the_next_poll() {
        let notifier = Arc::new(Notifier::default());
        let claims = ReadClaims::new(notifier.clone());

        let mut wake = notifier.subscribe(&ispb());
        let mut full = claims.claim(ispb(), 2, 10).expect("claims");
        full.handed(2);
        drop(full);
        assert!(!is_woken(&mut wake).await, "a read that took its claim wakes nobody");

        let mut short = claims.claim(ispb(), 2, 10).expect("claims");
        short.handed(0);
        drop(short);
        assert!(is_woken(&mut wake).await, "unread messages need another reader");

        let mut wake = notifier.subscribe(&ispb());
        drop(claims.claim(ispb(), 1, 10).expect("claims"));
        assert!(is_woken(&mut wake).await, "an abandoned read wakes the next poll too");
    }

    #[tokio::test]
    async fn a_claim_that_leaves_messages_unclaimed_wakes_the_next_poll() {
        let notifier = Arc::new(Notifier::default());
        let claims = ReadClaims::new(notifier.clone());
        let mut wake = notifier.subscribe(&ispb());
        let _all = claims.claim(ispb(), 10, 10).expect("claims");
        assert!(!is_woken(&mut wake).await, "nothing left for another read");
        let _part = claims.claim(ispb(), 25, 10).expect("claims ten of fifteen unclaimed");
        assert!(is_woken(&mut wake).await, "the other five need a reader");
    }
}
