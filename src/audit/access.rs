//! Access events — a forbidden request, a `PI-Pull-Next` token that failed
//! verification, a request without acceptable credentials — become `Audit` commands
//! in the ISPB's chain. They are rate-bounded: at most one record per ISPB and kind
//! a second per node; the next admitted record tells how many were left out. An
//! event for an ISPB that has no tenant (so no chain) goes to the cluster chain
//! (`Ispb::CLUSTER`) instead, naming the ISPB, bounded to one a second per kind over
//! all such ISPBs, so a caller spraying made-up ISPBs cannot flood it.

use std::collections::HashMap;

use parking_lot::Mutex;
use storage::audit::AuditAction;
use storage::{Command, Ispb};
use wire::clock::now_ms;

use crate::context::RequestContext;

/// Shortest time between two records of one ISPB and kind.
const WINDOW_MS: u64 = 1_000;
/// Most (ISPB, kind) windows remembered; beyond it, old ones are dropped.
const MAX_TRACKED: usize = 100_000;

/// The rate bound of access events on this node.
#[derive(Default)]
pub struct AccessEvents {
    windows: Mutex<HashMap<(Ispb, AuditAction), Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started_ms: u64,
    suppressed: u64,
}

impl AccessEvents {
    /// The `Audit` command recording this event, or `None` when the rate bound
    /// leaves it out (it is counted into the next one).
    pub fn admit(&self, ctx: &RequestContext, ispb: Ispb, action: AuditAction, outcome: &str) -> Option<Command> {
        let (now_ms, outcome) = self.bound((ispb, action), outcome)?;
        Some(Command::Audit { ispb, now_ms, origin: ctx.origin(), action, outcome })
    }

    /// The event `command` moved to the cluster chain, for an ISPB that turned out
    /// to have no tenant; `None` for any other command, or when the rate bound
    /// leaves it out.
    pub fn onto_cluster_chain(&self, command: Command) -> Option<Command> {
        let Command::Audit { ispb, origin, action, outcome, .. } = command else { return None };
        if ispb.is_cluster() {
            return None;
        }
        let (now_ms, outcome) = self.bound((Ispb::CLUSTER, action), &format!("ISPB {ispb} (no tenant): {outcome}"))?;
        Some(Command::Audit { ispb: Ispb::CLUSTER, now_ms, origin, action, outcome })
    }

    /// (now, the outcome naming what was left out before it) when `key`'s window
    /// admits a record; `None` when it is counted into the next one.
    fn bound(&self, key: (Ispb, AuditAction), outcome: &str) -> Option<(u64, String)> {
        let now = now_ms();
        let mut windows = self.windows.lock();
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, w| now.saturating_sub(w.started_ms) < WINDOW_MS);
        }
        let suppressed = match windows.get_mut(&key) {
            Some(window) if now.saturating_sub(window.started_ms) < WINDOW_MS => {
                window.suppressed += 1;
                return None;
            }
            Some(window) => std::mem::replace(window, Window { started_ms: now, suppressed: 0 }).suppressed,
            None => {
                windows.insert(key, Window { started_ms: now, suppressed: 0 });
                0
            }
        };
        drop(windows);
        let outcome =
            if suppressed > 0 { format!("{outcome} (+{suppressed} like it not recorded)") } else { outcome.to_owned() };
        Some((now, outcome))
    }
}

#[cfg(test)]
mod tests {
    use storage::audit::Origin;

    use super::*;
    use crate::context::{Identity, Route};

    #[test]
    fn one_record_a_second_per_ispb_and_kind_and_the_rest_are_counted() {
        let events = AccessEvents::default();
        let ctx = RequestContext {
            request_id: "r".into(),
            route: Route::StreamStart,
            identity: Identity::Anonymous,
            ispb: None,
        };
        let (a, b) = (Ispb::parse("32074986").expect("valid"), Ispb::parse("00038166").expect("valid"));
        assert!(events.admit(&ctx, a, AuditAction::Forbidden, "no").is_some());
        assert!(events.admit(&ctx, a, AuditAction::Forbidden, "no").is_none());
        assert!(events.admit(&ctx, a, AuditAction::Forbidden, "no").is_none());
        assert!(events.admit(&ctx, a, AuditAction::InvalidToken, "bad").is_some(), "another kind");
        assert!(events.admit(&ctx, b, AuditAction::Forbidden, "no").is_some(), "another ISPB");
        events.windows.lock().get_mut(&(a, AuditAction::Forbidden)).expect("tracked").started_ms -= WINDOW_MS;
        let Some(Command::Audit { outcome, .. }) = events.admit(&ctx, a, AuditAction::Forbidden, "no") else {
            panic!("admitted after the window")
        };
        assert_eq!(outcome, "no (+2 like it not recorded)");
    }

    #[test]
    fn events_of_ispbs_without_a_tenant_share_one_bound_on_the_cluster_chain() {
        let events = AccessEvents::default();
        let event = |ispb: Ispb| Command::Audit {
            ispb,
            now_ms: 1,
            origin: Origin::system("test"),
            action: AuditAction::Unauthenticated,
            outcome: "no credentials".into(),
        };
        let Some(Command::Audit { ispb, outcome, origin, .. }) =
            events.onto_cluster_chain(event(Ispb::parse("11111111").expect("valid")))
        else {
            panic!("the first one is recorded")
        };
        assert_eq!((ispb, outcome.as_str()), (Ispb::CLUSTER, "ISPB 11111111 (no tenant): no credentials"));
        assert_eq!(origin.actor, "system:test", "the caller stays the actor");
        assert!(
            events.onto_cluster_chain(event(Ispb::parse("22222222").expect("valid"))).is_none(),
            "another made-up ISPB in the same second"
        );
        assert!(events.onto_cluster_chain(event(Ispb::CLUSTER)).is_none(), "the cluster chain has no further fallback");
    }
}
