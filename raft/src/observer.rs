//! `ApplyObserver`: how the server learns that applied commands made messages
//! available to an ISPB's readers (an append, or a batch returned for redelivery) or
//! changed its streams, so it can wake the long polls waiting there.

use std::collections::BTreeMap;

use storage::{Ispb, Wake};

/// Told, after each applied write is in RocksDB, which ISPBs to wake and why. Called
/// from the state machine's task: it must be quick and must not block.
pub trait ApplyObserver: Send + Sync + 'static {
    fn wake(&self, wakes: &BTreeMap<Ispb, Wake>);
}

/// An observer that ignores every wake (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ApplyObserver for NoopObserver {
    fn wake(&self, _wakes: &BTreeMap<Ispb, Wake>) {}
}
