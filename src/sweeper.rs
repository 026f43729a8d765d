//! The idle-stream sweeper: every 250 ms, on each shard this node leads, closes the
//! streams that received no request for `stream_idle_timeout` (an `ExpireIdle`
//! command each), so slots free up and outstanding batches go back for redelivery
//! within a second of the timeout.

use std::time::Duration;

use storage::{Command, CommandResult, Ispb, StreamId};

use crate::app::AppState;

/// How often the sweeper looks.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Runs until shutdown.
pub async fn run(app: AppState) {
    let mut ticker = tokio::time::interval(SWEEP_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => sweep(&app).await,
            () = app.shutdown.cancelled() => return,
        }
    }
}

async fn sweep(app: &AppState) {
    let timeout = app.config.stream_idle_timeout;
    let mut idle: Vec<(Ispb, StreamId, u64)> = Vec::new();
    let mut open: std::collections::HashSet<(Ispb, StreamId)> = std::collections::HashSet::new();
    for shard in 0..app.shards.shard_count() {
        if !app.shards.is_leader(shard) {
            continue;
        }
        let Some(machine) = app.shards.machine(shard) else {
            continue;
        };
        let machine = machine.read();
        for tenant in machine.tenants() {
            for stream in tenant.streams.values() {
                open.insert((tenant.ispb, stream.id));
                if app.activity.is_idle(tenant.ispb, stream.id, timeout) {
                    idle.push((tenant.ispb, stream.id, stream.generation));
                }
            }
        }
    }
    app.activity.retain_open(|ispb, stream| open.contains(&(*ispb, stream)));
    for (ispb, stream, generation) in idle {
        match app.propose(Command::ExpireIdle { ispb, stream, generation }).await {
            Ok(CommandResult::Expired(true)) => {
                app.activity.forget(ispb, stream);
                tracing::info!(%ispb, stream, "idle stream expired");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%ispb, stream, %error, "idle expiry not committed"),
        }
    }
}
