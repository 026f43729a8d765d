//! The retention purger: every `PURGE_EVERY`, on each shard this node leads, finds
//! for every tenant how far its confirmed messages are past retention
//! (`storage::retention::purge_point`, a few point reads) and proposes one
//! `PurgeRetained` for it; each replica then range-deletes the same messages. In
//! the same pass it walks the next `DEDUPE_SLICE` of each tenant's producer dedupe
//! keys and proposes a `PurgeDedupe` of those past the dedupe window, so a tenant's
//! keys are all looked at every few passes (at most `DEDUPE_BUDGET` keys a pass over
//! all tenants, on the blocking pool). A leader change only delays a purge.

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
/// Dedupe records walked per pass over all tenants; the tenants past it wait for the
/// next pass, which starts where this one stopped.
pub const DEDUPE_BUDGET: usize = 100_000;

/// The purger of one node.
pub struct Purger {
    shards: ShardClient,
    store: Store,
    dedupe_window: Duration,
    /// Per tenant, where its dedupe walk resumes.
    dedupe_resume: HashMap<Ispb, String>,
    /// Which tenant (by position among the led ones) the next dedupe walk starts at.
    dedupe_turn: usize,
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
        Purger { shards, store, dedupe_window, dedupe_resume: HashMap::new(), dedupe_turn: 0 }
    }

    /// Runs a pass every `PURGE_EVERY` until `shutdown`, which also ends a pass in
    /// progress (each purge it proposed commits or not; the next start redoes it).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(PURGE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return,
            }
            tokio::select! {
                _ = self.pass(now_ms()) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Proposes the purges the tenants of the shards this node leads are due at `now`.
    pub async fn pass(&mut self, now: u64) -> Purged {
        let store = &self.store;
        let due = self.shards.shards().led_tenants(|t| (t.ispb, purge_point(store, t, now)));
        let mut purged = Purged::default();
        for (ispb, point) in &due {
            match point {
                Ok(Some(below)) => purged.messages += usize::from(self.purge_messages(*ispb, *below, now).await),
                Ok(None) => {}
                Err(error) => tracing::warn!(%ispb, %error, "retention: purge point not found"),
            }
        }
        let start = self.dedupe_turn % due.len().max(1);
        let mut budget = DEDUPE_BUDGET;
        for (walked, (ispb, _)) in due.iter().cycle().skip(start).take(due.len()).enumerate() {
            if budget == 0 {
                self.dedupe_turn = start + walked;
                return purged;
            }
            let slice = DEDUPE_SLICE.min(budget);
            budget -= slice;
            purged.dedupe += usize::from(self.purge_dedupe_slice(*ispb, now, slice).await);
        }
        self.dedupe_turn = start;
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

    /// Walks the next `slice` of `ispb`'s dedupe keys (on the blocking pool) and
    /// purges those past the window.
    async fn purge_dedupe_slice(&mut self, ispb: Ispb, now: u64, slice: usize) -> bool {
        let before_ms = now.saturating_sub(self.dedupe_window.as_millis() as u64);
        let after = self.dedupe_resume.remove(&ispb);
        let store = self.store.clone();
        let scan =
            tokio::task::spawn_blocking(move || expired_dedupe_keys(&store, &ispb, before_ms, after.as_deref(), slice))
                .await;
        let DedupeScan { expired, resume_after } = match scan {
            Ok(Ok(scan)) => scan,
            Ok(Err(error)) => {
                tracing::warn!(%ispb, %error, "retention: dedupe keys not walked");
                return false;
            }
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
