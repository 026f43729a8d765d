//! Named timing presets: the limits and Raft timings test nodes and clusters start
//! with, and the wait budgets the harness and the tests share, each with its reason.

use std::time::Duration;

/// The limits a single in-process test node starts with.
pub struct NodeTiming {
    pub long_poll_wait_ms: u64,
    pub stream_idle_timeout_ms: u64,
}

/// A single test node: a 300 ms long poll, so the empty poll that ends every drain
/// costs little; a 5 s idle timeout, far above the pause between two requests of a
/// test, so no stream expires unless the test sets a shorter one to watch it expire.
pub const NODE: NodeTiming = NodeTiming { long_poll_wait_ms: 300, stream_idle_timeout_ms: 5_000 };

/// The Raft timings and limits a member of a test cluster starts with.
pub struct ClusterTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_ms: [u64; 2],
    pub long_poll_wait_ms: u64,
    pub stream_idle_timeout_ms: u64,
}

/// An in-process cluster member: 100 ms heartbeats, so followers learn commits and
/// leaders quickly; elections at the production default [1500, 3000] (a failover
/// takes about min + max = 4.5 s, well inside `FAILOVER`); a 500 ms long poll (a
/// forwarded pull crosses one more hop); a 10 s idle timeout, so a stream survives
/// the failover pause in its middle.
pub const MEMBER: ClusterTiming = ClusterTiming {
    heartbeat_ms: 100,
    election_timeout_ms: [1500, 3000],
    long_poll_wait_ms: 500,
    stream_idle_timeout_ms: 10_000,
};

/// A member run as a real `pixstream serve` process (the kill -9 test): as `MEMBER`,
/// but 200 ms heartbeats, half the heartbeat traffic for three whole processes
/// sharing the test machine with the test.
pub const PROCESS_MEMBER: ClusterTiming = ClusterTiming { heartbeat_ms: 200, ..MEMBER };

/// Long poll of tests that only need an empty pull to come back fast (204 checks).
pub const QUICK_POLL_MS: u64 = 100;

/// Idle timeout of tests that hold long polls of several seconds: no stream expires
/// while one of its requests waits.
pub const LONG_IDLE_MS: u64 = 20_000;

/// A node starts within this: RocksDB opened and every shard's leader elected, on a
/// loaded two-core CI machine.
pub const START: Duration = Duration::from_secs(60);

/// A node stops within this: long polls answered, Raft stopped, RocksDB flushed.
pub const STOP: Duration = Duration::from_secs(30);

/// Longest single HTTP exchange of a test: above every long poll a test configures.
pub const REQUEST: Duration = Duration::from_secs(30);

/// Every shard of a fresh cluster has a leader within this (first elections of all
/// shards on all nodes at once).
pub const LEADERS: Duration = Duration::from_secs(30);

/// One step on a single node (a stream opened, a batch confirmed): the node does it
/// in milliseconds; 5 s only absorbs a slow machine.
pub const STEP: Duration = Duration::from_secs(5);

/// A request already waiting in a long poll answers within this once it is woken.
pub const ANSWER: Duration = Duration::from_secs(10);

/// A shard elects a new leader within this after its leader stopped or was cut off
/// (about 4.5 s with `MEMBER`, a retried election included).
pub const FAILOVER: Duration = Duration::from_secs(20);

/// Replicas converge within this after a restart or a healed partition (the
/// restarted node catches up by log or snapshot).
pub const CONVERGE: Duration = Duration::from_secs(30);

/// How long a retried write may see 503s or broken connections (a failover plus
/// the time the client needs to find the new leader).
pub const UNAVAILABLE: Duration = Duration::from_secs(30);

/// A stopped node's ports can be bound again within this.
pub const REBIND: Duration = Duration::from_secs(10);

/// How often `TestNode::wait_until` looks at a single node's state.
pub const NODE_POLL: Duration = Duration::from_millis(20);

/// How often cluster waits look at the members' state (a Raft round is ~100 ms).
pub const CLUSTER_POLL: Duration = Duration::from_millis(50);

/// Pause between retries of a refused write or an unbound port.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
