//! The retention purger: every `PURGE_EVERY`, on each shard this node leads, finds
//! for every tenant how far its confirmed messages are past retention
//! (`storage::retention::purge_point`, a few point reads) and proposes one
//! `PurgeRetained` for it; each replica then range-deletes the same messages. A
//! leader change only delays a purge.

use std::time::Duration;

use storage::{Command, CommandResult, Store, TenantState};
use tokio_util::sync::CancellationToken;
use wire::clock::now_ms;

use crate::shard_client::ShardClient;

/// How often the purger looks.
pub const PURGE_EVERY: Duration = Duration::from_secs(30);

/// Runs until `shutdown`.
pub async fn run(shards: ShardClient, store: Store, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PURGE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => { purge_led_tenants(&shards, &store, now_ms()).await; }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Proposes the purge each tenant of the shards this node leads is due at `now`;
/// returns how many purges committed.
pub async fn purge_led_tenants(shards: &ShardClient, store: &Store, now: u64) -> usize {
    let mut purged = 0;
    for tenant in shards.shards().led_tenants(TenantState::clone) {
        let below = match storage::retention::purge_point(store, &tenant, now) {
            Ok(Some(below)) => below,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(ispb = %tenant.ispb, %error, "retention: purge point not found");
                continue;
            }
        };
        match shards.propose(Command::PurgeRetained { ispb: tenant.ispb, below, now_ms: now }).await {
            Ok(CommandResult::Purged(true)) => {
                purged += 1;
                tracing::info!(ispb = %tenant.ispb, below, "retention: confirmed messages purged");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(ispb = %tenant.ispb, %error, "retention: purge not committed"),
        }
    }
    purged
}
