//! Pulls served per ISPB: one counter per tenant that was ever served here, kept in
//! memory (bounded by the tenants, since only answered pulls count) and exposed for
//! the same bounded selection of ISPBs as the other per-ISPB series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use storage::Ispb;

/// Pulls answered (200 or 204) by ISPB.
#[derive(Debug, Default)]
pub struct IspbPulls {
    counts: RwLock<HashMap<Ispb, AtomicU64>>,
}

impl IspbPulls {
    /// Counts one answered pull of `ispb`.
    pub fn count(&self, ispb: Ispb) {
        if let Some(count) = self.counts.read().get(&ispb) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counts.write().entry(ispb).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Pulls of `ispb` answered so far.
    pub fn get(&self, ispb: &Ispb) -> u64 {
        self.counts.read().get(ispb).map_or(0, |count| count.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_ispb_counts_alone() {
        let pulls = super::IspbPulls::default();
        let ispb = |text| storage::Ispb::parse(text).expect("ISPB");
        let (a, b) = (ispb("12345678"), ispb("87654321"));
        (0..3).for_each(|_| pulls.count(a));
        pulls.count(b);
        assert_eq!((pulls.get(&a), pulls.get(&b)), (3, 1));
    }
}
