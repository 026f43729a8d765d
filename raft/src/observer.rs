//! `ApplyObserver`: how the server learns that applied commands made messages
//! available to an ISPB's readers (an append, or a batch returned for redelivery),
//! so it can wake the long polls waiting there.

use std::collections::BTreeSet;

use storage::Ispb;

/// Told, after each applied write is in RocksDB, which ISPBs to wake. Called from
/// the state machine's task: it must be quick and must not block.
pub trait ApplyObserver: Send + Sync + 'static {
    fn wake(&self, ispbs: &BTreeSet<Ispb>);
}

/// An observer that ignores every wake (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ApplyObserver for NoopObserver {
    fn wake(&self, _ispbs: &BTreeSet<Ispb>) {}
}
