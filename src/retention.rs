//! The retention purger: every `PURGE_EVERY`, on each shard this node leads, finds
//! for every tenant how far its confirmed messages are past retention
//! (`storage::retention::purge_point`, a few point reads) and proposes one
//! `PurgeRetained` for it; each replica then range-deletes the same messages. In
//! the same pass it walks the next `DEDUPE_SLICE` of each tenant's producer dedupe
//! keys and proposes a `PurgeDedupe` of those past the dedupe window, so a tenant's
//! keys are all looked at every few passes. A leader change only delays a purge.

use std::collections::HashMap;
use std::time::Duration;

use storage::retention::{DedupeScan, expired_dedupe_keys, purge_point};
use storage::{Command, CommandResult, Ispb, Store};
use tokio_util::sync::CancellationToken;
use wire::clock::now_ms;

use crate::shard_client::ShardClient;

/// How often the purger looks.
pub const PURGE_EVERY: Duration = Duration::from_secs(30);
/// Dedupe records of one tenant walked per pass (one `PurgeDedupe` at most).
pub const DEDUPE_SLICE: usize = 10_000;

/// The purger of one node.
pub struct Purger {
    shards: ShardClient,
    store: Store,
    dedupe_window: Duration,
    /// Per tenant, where its dedupe walk resumes.
    dedupe_resume: HashMap<Ispb, String>,
}

/// What one pass purged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Tenants whose confirmed messages past retention were purged.
    pub messages: usize,
    /// Tenants some of whose expired dedupe keys were purged.
    pub dedupe: usize,
}

impl Purger {
    pub fn new(shards: ShardClient, store: Store, dedupe_window: Duration) -> Purger {
        Purger { shards, store, dedupe_window, dedupe_resume: HashMap::new() }
    }

    /// Runs a pass every `PURGE_EVERY` until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(PURGE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => { self.pass(now_ms()).await; }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Proposes the purges the tenants of the shards this node leads are due at `now`.
    pub async fn pass(&mut self, now: u64) -> Purged {
        let store = &self.store;
        let due = self.shards.shards().led_tenants(|t| (t.ispb, purge_point(store, t, now)));
        let mut purged = Purged::default();
        for (ispb, point) in due {
            match point {
                Ok(Some(below)) => purged.messages += usize::from(self.purge_messages(ispb, below, now).await),
                Ok(None) => {}
                Err(error) => tracing::warn!(%ispb, %error, "retention: purge point not found"),
            }
            purged.dedupe += usize::from(self.purge_dedupe_slice(ispb, now).await);
        }
        purged
    }

    async fn purge_messages(&self, ispb: Ispb, below: u64, now: u64) -> bool {
        match self.shards.propose(Command::PurgeRetained { ispb, below, now_ms: now }).await {
            Ok(CommandResult::Purged(true)) => {
                tracing::info!(%ispb, below, "retention: confirmed messages purged");
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%ispb, %error, "retention: purge not committed");
                false
            }
        }
    }

    /// Walks the next slice of `ispb`'s dedupe keys and purges those past the window.
    async fn purge_dedupe_slice(&mut self, ispb: Ispb, now: u64) -> bool {
        let before_ms = now.saturating_sub(self.dedupe_window.as_millis() as u64);
        let after = self.dedupe_resume.remove(&ispb);
        let scan = expired_dedupe_keys(&self.store, &ispb, before_ms, after.as_deref(), DEDUPE_SLICE);
        let DedupeScan { expired, resume_after } = match scan {
            Ok(scan) => scan,
            Err(error) => {
                tracing::warn!(%ispb, %error, "retention: dedupe keys not walked");
                return false;
            }
        };
        if let Some(resume) = resume_after {
            self.dedupe_resume.insert(ispb, resume);
        }
        if expired.is_empty() {
            return false;
        }
        let count = expired.len();
        match self.shards.propose(Command::PurgeDedupe { ispb, before_ms, keys: expired }).await {
            Ok(CommandResult::Purged(true)) => {
                tracing::info!(%ispb, count, "retention: dedupe keys past the window purged");
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%ispb, %error, "retention: dedupe purge not committed");
                false
            }
        }
    }
}
