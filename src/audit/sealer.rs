//! The sealer: every `[audit] checkpoint_interval_secs`, on each shard this node
//! leads, signs a checkpoint of every chain that grew since its last one and
//! proposes it (`AuditSeal`); with a retention, proposes `AuditPurge` for chains
//! whose oldest record is older than it. A leader change only delays a seal: the
//! new leader seals the chain head it applied.

use std::sync::Arc;
use std::time::Duration;

use storage::audit::{AuditRecord, ChainHead, record_key};
use storage::{Command, Ispb, Store, columns};
use wire::clock::now_ms;

use super::AuditSigner;
use crate::config::AuditConfig;
use crate::shard_client::ShardClient;

/// What the sealer works with.
pub struct Sealer {
    pub config: AuditConfig,
    pub signer: Arc<AuditSigner>,
    pub shards: ShardClient,
    pub store: Store,
}

impl Sealer {
    /// Seals (and purges) every chain of the shards this node leads; returns how
    /// many checkpoints were committed.
    pub async fn seal_led_chains(&self) -> usize {
        let mut sealed = 0;
        for (ispb, head) in self.led_chains() {
            if head.unsealed() > 0 && self.seal(ispb, &head).await {
                sealed += 1;
            }
            if let Some(retention) = self.config.retention {
                self.purge_if_due(ispb, &head, retention).await;
            }
        }
        sealed
    }

    /// Seals the chain of `ispb` now if this node leads its shard (an export asks
    /// for this so it ends on a checkpoint). Returns whether a checkpoint committed.
    pub async fn seal_now(&self, ispb: Ispb) -> bool {
        let head = self.shards.read(&ispb, |m| m.record(&ispb).map(|t| t.audit.clone())).flatten();
        match head {
            Some(head) if head.unsealed() > 0 => self.seal(ispb, &head).await,
            _ => false,
        }
    }

    fn led_chains(&self) -> Vec<(Ispb, ChainHead)> {
        self.shards.shards().led_records(|t| (t.ispb, t.audit.clone()))
    }

    async fn seal(&self, ispb: Ispb, head: &ChainHead) -> bool {
        let Some(upto) = head.newest() else { return false };
        let checkpoint = self.signer.sign(ispb, upto, head.last, now_ms());
        match self.shards.propose(Command::AuditSeal { checkpoint }).await {
            Ok(storage::CommandResult::Audited(applied)) => applied,
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%ispb, %error, "audit checkpoint not committed; the next interval retries");
                false
            }
        }
    }

    async fn purge_if_due(&self, ispb: Ispb, head: &ChainHead, retention: Duration) {
        let before_ms = now_ms().saturating_sub(retention.as_millis() as u64);
        let oldest = self
            .store
            .get(columns::AUDIT, &record_key(&ispb, head.first))
            .ok()
            .flatten()
            .and_then(|bytes| storage::db::decode::<AuditRecord>(columns::AUDIT, &bytes).ok());
        if oldest.is_some_and(|r| r.at_ms < before_ms)
            && let Err(error) = self.shards.propose(Command::AuditPurge { ispb, before_ms }).await
        {
            tracing::warn!(%ispb, %error, "audit retention purge not committed; the next interval retries");
        }
    }
}
