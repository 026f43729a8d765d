//! Idle CPU of a cluster: 3 nodes × 16 shards × rf 3 (48 groups) in one process
//! with the production timings (heartbeat 500 ms, elections 1.5–3 s), measured
//! from /proc/self/stat over 10 s. Ignored by default (it takes ~15 s); run with
//! `cargo test -p pixstream-raft --test it idle -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use raft::ShardsConfig;

use crate::harness::Cluster;

/// User + system CPU time of this process so far, in clock ticks (USER_HZ, 100/s).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat readable");
    // Fields after the parenthesised command name; utime and stime are fields 14
    // and 15 of the line, so 12th and 13th after the name.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).expect("stat has a command name");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime is a number");
    let stime: u64 = fields[12].parse().expect("stime is a number");
    utime + stime
}

fn production_timings(config: ShardsConfig) -> ShardsConfig {
    let defaults = ShardsConfig::default();
    ShardsConfig { heartbeat_ms: defaults.heartbeat_ms, election_timeout_ms: defaults.election_timeout_ms, ..config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 15 s measurement; run explicitly"]
async fn idle_cpu_of_three_nodes_with_sixteen_shards() {
    let cluster = Cluster::start(3, 16, 3, production_timings).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ticks, started) = (cpu_ticks(), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let used = (cpu_ticks() - ticks) as f64 / 100.0;
    let wall = started.elapsed().as_secs_f64();
    let leaders: Vec<u64> = (0..16).filter_map(|s| cluster.node(1).leader_of(s)).collect();
    eprintln!(
        "idle: {used:.2} s CPU in {wall:.2} s = {:.1}% of one core (48 groups, leaders {leaders:?})",
        100.0 * used / wall
    );
    assert!(used / wall < 0.5, "idle groups cost more than half a core");
    cluster.shutdown().await;
}
