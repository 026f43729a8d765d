//! The idle-stream sweeper: every 250 ms, on each shard this node leads, closes the
//! streams that received no request for `stream_idle_timeout` (an `ExpireIdle`
//! command each), so slots free up and outstanding batches go back for redelivery
//! within a second of the timeout.
//!
//! Request activity is leader-local (`activity`). A stream this node has not served
//! yet — after a restart or a leader change — is dated from its replicated state
//! (`idle_since`), so a batch whose client is gone returns within the idle timeout of
//! its hand-out however often leaders change.

use std::collections::HashSet;
use std::time::Duration;

use storage::{Command, CommandResult, Ispb, StreamId, StreamState};
use tokio::time::Instant;

use super::PullService;
use wire::clock::now_ms;

/// How often the sweeper looks.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Runs until shutdown; counts what it closes and returns in the pull service's
/// churn counters.
pub async fn run(pull: std::sync::Arc<PullService>) {
    let mut ticker = tokio::time::interval(SWEEP_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => sweep(&pull).await,
            () = pull.shutdown().cancelled() => return,
        }
    }
}

/// When a stream this node has not seen a request of was last active, judged from
/// its replicated state at `now` (epoch `now_ms`):
/// - holding a batch: the read that handed it out (`handed_at_ms`) — any later
///   request that advanced the stream would have confirmed the batch;
/// - holding none: a request may be waiting in a long poll elsewhere without having
///   replicated anything, at most `long_poll_wait` ago, so no earlier than that.
pub fn idle_since(stream: &StreamState, now: Instant, now_ms: u64, long_poll_wait: Duration) -> Instant {
    let handed = now.checked_sub(Duration::from_millis(now_ms.saturating_sub(stream.handed_at_ms))).unwrap_or(now);
    if stream.batch.is_empty() { handed.max(now.checked_sub(long_poll_wait).unwrap_or(now)) } else { handed }
}

async fn sweep(pull: &PullService) {
    let config = pull.config();
    let (timeout, wait) = (config.stream_idle_timeout, config.long_poll_wait);
    let shards = pull.shards().shards();
    let (now, now_ms) = (Instant::now(), now_ms());
    // (ISPB, stream, generation, messages its batch holds)
    let mut idle: Vec<(Ispb, StreamId, u64, usize)> = Vec::new();
    let mut open: HashSet<(Ispb, StreamId)> = HashSet::new();
    for machine in shards.led_machines() {
        let machine = machine.read();
        for tenant in machine.tenants() {
            for stream in tenant.streams.values() {
                open.insert((tenant.ispb, stream.id));
                let seen_before = idle_since(stream, now, now_ms, wait);
                if pull.activity().is_idle(tenant.ispb, stream.id, timeout, seen_before) {
                    idle.push((tenant.ispb, stream.id, stream.generation, stream.batch.len()));
                }
            }
        }
    }
    // Streams of shards led elsewhere are forgotten: if leadership comes back, their
    // dates come from the replicated state again, not from what was seen back then.
    pull.activity().retain_open(|ispb, stream| open.contains(&(*ispb, stream)));
    for (ispb, stream, generation, held) in idle {
        match pull.shards().propose(Command::ExpireIdle { ispb, stream, generation, now_ms }).await {
            Ok(CommandResult::Expired(true)) => {
                pull.activity().forget(ispb, stream);
                pull.churn().expiries.inc();
                pull.churn().redeliveries.inc_by(held as u64);
                tracing::info!(%ispb, stream, "idle stream expired");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%ispb, stream, %error, "idle expiry not committed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn stream(handed_at_ms: u64, batch: Vec<u64>) -> StreamState {
        StreamState { id: 1, generation: 3, batch, handed_at_ms, opened_at_ms: 0 }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_holding_a_batch_is_idle_since_its_hand_out() {
        tokio::time::advance(Duration::from_secs(120)).await;
        let now = Instant::now();
        let since = idle_since(&stream(1_000_000 - 40_000, vec![7, 8]), now, 1_000_000, WAIT);
        assert_eq!(now - since, Duration::from_secs(40), "40 s since the batch was handed out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_without_a_batch_may_have_a_long_poll_waiting_elsewhere() {
        tokio::time::advance(Duration::from_secs(120)).await;
        let now = Instant::now();
        let since = idle_since(&stream(1_000_000 - 40_000, Vec::new()), now, 1_000_000, WAIT);
        assert_eq!(now - since, WAIT, "no earlier than a long poll can have started");
        let recent = idle_since(&stream(1_000_000 - 2_000, Vec::new()), now, 1_000_000, WAIT);
        assert_eq!(now - recent, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_out_dated_in_the_future_by_a_skewed_clock_counts_as_now() {
        let now = Instant::now();
        assert_eq!(idle_since(&stream(2_000_000, vec![1]), now, 1_000_000, WAIT), now);
    }
}
