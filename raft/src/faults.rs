//! `NetworkFaults`: the in-process fault injector of the peer network, for tests.
//!
//! Every `PeerNetwork` of a node consults it before sending, so a test that shares
//! one `Arc<NetworkFaults>` among all its nodes can cut links (`block`), cut a node
//! off (`isolate`), and slow links down (`set_delay`). A blocked send fails as
//! `Unreachable` before touching the socket. Faults act on the sending side only:
//! `block(a, b)` stops a's requests to b (and so b's answers to them), not b's
//! requests to a. Production never sets a fault; then a check costs one atomic load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

/// Links cut and slowed between node ids; see the module docs.
#[derive(Debug, Default)]
pub struct NetworkFaults {
    /// Whether any fault is set (the fast path of `check`).
    active: AtomicBool,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    blocked: BTreeSet<(u64, u64)>,
    isolated: BTreeSet<u64>,
    delays: BTreeMap<(u64, u64), Duration>,
}

impl State {
    fn is_empty(&self) -> bool {
        self.blocked.is_empty() && self.isolated.is_empty() && self.delays.is_empty()
    }
}

/// What a send from one node to another must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send now.
    None,
    /// Fail as unreachable without sending.
    Blocked,
    /// Sleep this long, then send.
    Delay(Duration),
}

impl NetworkFaults {
    /// No faults.
    pub fn new() -> NetworkFaults {
        NetworkFaults::default()
    }

    /// Stops every send from `from` to `to`.
    pub fn block(&self, from: u64, to: u64) {
        self.update(|s| {
            s.blocked.insert((from, to));
        });
        tracing::info!(from, to, "fault injection: link blocked");
    }

    /// Cuts `node` off from every other node, both directions.
    pub fn isolate(&self, node: u64) {
        self.update(|s| {
            s.isolated.insert(node);
        });
        tracing::info!(node, "fault injection: node isolated");
    }

    /// Lifts every block and isolation (delays stay).
    pub fn unblock_all(&self) {
        self.update(|s| {
            s.blocked.clear();
            s.isolated.clear();
        });
        tracing::info!("fault injection: every link unblocked");
    }

    /// Delays every send from `from` to `to` by `delay` (zero removes the delay).
    pub fn set_delay(&self, from: u64, to: u64, delay: Duration) {
        self.update(|s| {
            if delay.is_zero() {
                s.delays.remove(&(from, to));
            } else {
                s.delays.insert((from, to), delay);
            }
        });
        tracing::info!(from, to, delay_ms = delay.as_millis() as u64, "fault injection: link delay set");
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.update(|s| *s = State::default());
    }

    /// What a send from `from` to `to` must do now.
    pub fn check(&self, from: u64, to: u64) -> Fault {
        if !self.active.load(Ordering::Acquire) {
            return Fault::None;
        }
        let state = self.state.read();
        if state.blocked.contains(&(from, to)) || state.isolated.contains(&from) || state.isolated.contains(&to) {
            return Fault::Blocked;
        }
        match state.delays.get(&(from, to)) {
            Some(delay) => Fault::Delay(*delay),
            None => Fault::None,
        }
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state.write();
        change(&mut state);
        self.active.store(!state.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_directional_and_isolation_cuts_both_ways() {
        let faults = NetworkFaults::new();
        assert_eq!(faults.check(1, 2), Fault::None);
        faults.block(1, 2);
        assert_eq!(faults.check(1, 2), Fault::Blocked);
        assert_eq!(faults.check(2, 1), Fault::None);
        faults.isolate(3);
        assert_eq!(faults.check(3, 1), Fault::Blocked);
        assert_eq!(faults.check(2, 3), Fault::Blocked);
        assert_eq!(faults.check(2, 1), Fault::None);
        faults.unblock_all();
        assert_eq!(faults.check(1, 2), Fault::None);
        assert_eq!(faults.check(3, 1), Fault::None);
    }

    #[test]
    fn delays_apply_per_link_until_removed() {
        let faults = NetworkFaults::new();
        faults.set_delay(1, 2, Duration::from_millis(30));
        assert_eq!(faults.check(1, 2), Fault::Delay(Duration::from_millis(30)));
        assert_eq!(faults.check(2, 1), Fault::None);
        faults.unblock_all();
        assert_eq!(faults.check(1, 2), Fault::Delay(Duration::from_millis(30)), "unblock keeps delays");
        faults.set_delay(1, 2, Duration::ZERO);
        assert_eq!(faults.check(1, 2), Fault::None);
        faults.block(1, 2);
        faults.clear();
        assert_eq!(faults.check(1, 2), Fault::None);
    }
}
