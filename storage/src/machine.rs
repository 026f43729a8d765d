//! `ShardMachine`: the deterministic state machine of one shard.
//!
//! `apply` takes committed commands, changes the in-memory state of the shard's
//! tenants and records every change in the caller's `WriteBatch`; the caller adds
//! its own bookkeeping (last applied log id) to the same batch and writes it, so the
//! state on disk always matches a prefix of the log. Nothing here reads the clock or
//! randomness.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rocksdb::{IteratorMode, WriteBatch};

use crate::audit::{AuditAction, AuditRecord, Checkpoint, Digest, Origin};
use crate::audit::{AuditEvent, checkpoint_key, record_key};
use crate::command::{AppendOutcome, Command, CommandResult, Handout, Rejection};
use crate::db::{decode, encode};
use crate::error::Result;
use crate::message::{DedupeRecord, MessageRecord, NewMessage};
use crate::wake::Wake;
use crate::{
    Ispb, Seq, Store, StoredMessage, StreamId, StreamState, TenantSettings, TenantState, columns, keys, retention,
    shard_of,
};

/// The state of one shard: its tenants, with their streams, in memory; RocksDB holds
/// the durable copy and the message bodies.
pub struct ShardMachine {
    shard: u32,
    shards: u32,
    store: Store,
    tenants: BTreeMap<Ispb, TenantState>,
    /// ISPBs whose waiting readers should look again, and why (messages became
    /// available, or their streams changed).
    woken: BTreeMap<Ispb, Wake>,
    /// Whether commands leave audit records (`Audit*` commands apply regardless).
    audit: bool,
}

/// Changes of one `apply` call, written out at its end.
#[derive(Default)]
struct Pending {
    tenants: BTreeSet<Ispb>,
    streams: BTreeSet<(Ispb, StreamId)>,
    dedupe: HashMap<Vec<u8>, DedupeRecord>,
    /// Messages appended by this apply (not yet readable from disk).
    appended: HashMap<(Ispb, Seq), StoredMessage>,
    /// Hashes of the audit records this apply wrote.
    audited: HashMap<(Ispb, u64), Digest>,
    /// The first audit seq this apply wrote per chain (a purge stops before it).
    audit_written_from: HashMap<Ispb, u64>,
}

impl ShardMachine {
    /// Loads the state of `shard` (of `shards`) from the store.
    pub fn load(store: Store, shard: u32, shards: u32) -> Result<ShardMachine> {
        let mut machine =
            ShardMachine { shard, shards, store, tenants: BTreeMap::new(), woken: BTreeMap::new(), audit: true };
        machine.reload()?;
        Ok(machine)
    }

    /// Re-reads every tenant and stream of this shard from the store (after start or
    /// a snapshot install).
    pub fn reload(&mut self) -> Result<()> {
        self.tenants.clear();
        let db = self.store.db();
        for item in db.iterator_cf(self.store.cf(columns::TENANTS)?, IteratorMode::Start) {
            let (key, value) = item?;
            let Some(ispb) = key.as_ref().try_into().ok().and_then(Ispb::from_bytes) else {
                continue;
            };
            if shard_of(&ispb, self.shards) != self.shard {
                continue;
            }
            let mut tenant: TenantState = decode(columns::TENANTS, &value)?;
            let streams_cf = self.store.cf(columns::STREAMS)?;
            for item in db.prefix_iterator_cf(streams_cf, ispb.as_bytes()) {
                let (key, value) = item?;
                if !key.starts_with(ispb.as_bytes()) {
                    break;
                }
                let stream: StreamState = decode(columns::STREAMS, &value)?;
                tenant.streams.insert(stream.id, stream);
            }
            self.tenants.insert(ispb, tenant);
        }
        Ok(())
    }

    /// Turns the audit records of ordinary commands on or off (every replica of a
    /// shard must agree: it changes what apply writes).
    pub fn with_audit(mut self, audit: bool) -> ShardMachine {
        self.audit = audit;
        self
    }

    /// The shard this machine serves.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A tenant's current state (none for a deleted tenant).
    pub fn tenant(&self, ispb: &Ispb) -> Option<&TenantState> {
        self.tenants.get(ispb).filter(|t| t.is_live())
    }

    /// Every tenant of the shard (deleted ones left out).
    pub fn tenants(&self) -> impl Iterator<Item = &TenantState> {
        self.tenants.values().filter(|t| t.is_live())
    }

    /// The record of `ispb`, deleted or not: where its audit chain and seqs stand.
    pub fn record(&self, ispb: &Ispb) -> Option<&TenantState> {
        self.tenants.get(ispb)
    }

    /// Every tenant record of the shard, deleted ones included (their audit chains
    /// live on): what snapshots and audit sealing walk.
    pub fn records(&self) -> impl Iterator<Item = &TenantState> {
        self.tenants.values()
    }

    /// Takes the ISPBs whose readers should be woken since the last call.
    pub fn drain_woken(&mut self) -> BTreeMap<Ispb, Wake> {
        std::mem::take(&mut self.woken)
    }

    /// Applies committed commands in order, recording every change in `batch`.
    pub fn apply(&mut self, commands: Vec<Command>, batch: &mut WriteBatch) -> Result<Vec<CommandResult>> {
        let mut pending = Pending::default();
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            results.push(self.apply_one(command, batch, &mut pending)?);
        }
        self.write_pending(pending, batch)?;
        Ok(results)
    }

    fn apply_one(&mut self, command: Command, batch: &mut WriteBatch, pending: &mut Pending) -> Result<CommandResult> {
        let command = match command {
            Command::AuditSeal { checkpoint } => return self.seal(checkpoint, batch, pending),
            Command::AuditPurge { ispb, before_ms } => return self.purge_audit(ispb, before_ms, batch, pending),
            Command::PurgeRetained { ispb, below, now_ms } => {
                return self.purge_retained(ispb, below, now_ms, batch, pending);
            }
            Command::PurgeDedupe { ispb, before_ms, keys } => {
                return self.purge_dedupe(ispb, before_ms, &keys, batch, pending);
            }
            other => other,
        };
        let (ispb, at_ms, origin, action) = match &command {
            Command::UpsertTenant { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::TenantUpsert)
            }
            Command::Append { ispb, now_ms, origin, .. } => (*ispb, *now_ms, origin.clone(), AuditAction::Append),
            Command::OpenStream { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::StreamOpen)
            }
            Command::Pull { ispb, now_ms, origin, .. } => (*ispb, *now_ms, origin.clone(), AuditAction::StreamRead),
            Command::CloseStream { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::StreamClose)
            }
            Command::ExpireIdle { ispb, now_ms, .. } => {
                (*ispb, *now_ms, Origin::system("sweeper"), AuditAction::StreamExpire)
            }
            Command::Audit { ispb, now_ms, origin, action, .. } => (*ispb, *now_ms, origin.clone(), *action),
            Command::MoveCursor { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::CursorMove)
            }
            Command::DeleteTenant { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::TenantDelete)
            }
            Command::OpenReplay { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::ReplayOpen)
            }
            Command::CloseReplay { ispb, now_ms, origin, .. } => {
                (*ispb, *now_ms, origin.clone(), AuditAction::ReplayClose)
            }
            Command::AuditSeal { .. }
            | Command::AuditPurge { .. }
            | Command::PurgeRetained { .. }
            | Command::PurgeDedupe { .. } => {
                unreachable!("answered above")
            }
        };
        let mut event = AuditEvent {
            at_ms,
            origin,
            action,
            stream: None,
            confirmed: Vec::new(),
            seqs: Vec::new(),
            resource_ids: Vec::new(),
            outcome: "ok".to_owned(),
        };
        let mut result = match command {
            Command::UpsertTenant { ispb, settings, .. } => {
                event.outcome = format!("settings {settings:?}");
                match self.tenants.get_mut(&ispb) {
                    Some(tenant) => {
                        tenant.settings = settings;
                        tenant.deleted_at_ms = None;
                    }
                    None => {
                        self.tenants.insert(ispb, TenantState::new(ispb, settings));
                    }
                }
                pending.tenants.insert(ispb);
                CommandResult::TenantUpserted
            }
            Command::Append { ispb, now_ms, auto_create, dedupe_window_ms, messages, .. } => {
                self.append(ispb, now_ms, auto_create, dedupe_window_ms, messages, batch, pending)?
            }
            Command::OpenStream { ispb, now_ms, max_batch, auto_create, .. } => {
                self.open_stream(ispb, now_ms, max_batch, auto_create, pending)
            }
            Command::Pull { ispb, stream, generation, max_batch, now_ms, .. } => {
                event.stream = Some(stream);
                self.pull(ispb, stream, generation, max_batch, now_ms, &mut event, pending)
            }
            Command::CloseStream { ispb, stream, generation, .. } => {
                event.stream = Some(stream);
                self.close(ispb, stream, generation, &mut event, pending)
            }
            Command::ExpireIdle { ispb, stream, generation, .. } => {
                event.stream = Some(stream);
                match self.expire(ispb, stream, generation, pending) {
                    Some(returned) => {
                        event.seqs = returned;
                        CommandResult::Expired(true)
                    }
                    None => return Ok(CommandResult::Expired(false)),
                }
            }
            Command::MoveCursor { ispb, to, reason, .. } => self.move_cursor(ispb, to, reason, &mut event, pending)?,
            Command::DeleteTenant { ispb, force, reason, now_ms, .. } => {
                self.delete_tenant(ispb, force, &reason, now_ms, &mut event, batch, pending)?
            }
            Command::OpenReplay { ispb, from, limit, lifetime_ms, now_ms, .. } => {
                self.open_replay(ispb, from, limit, lifetime_ms, now_ms, &mut event, pending)?
            }
            Command::CloseReplay { ispb, replay, .. } => {
                event.stream = Some(replay);
                let closed = self.tenants.get_mut(&ispb).and_then(|t| t.replays.remove(&replay)).is_some();
                if !closed {
                    return Ok(CommandResult::ReplayClosed(false));
                }
                pending.tenants.insert(ispb);
                CommandResult::ReplayClosed(true)
            }
            Command::Audit { outcome, .. } => {
                event.outcome = outcome;
                if ispb.is_cluster() && !self.tenants.contains_key(&ispb) {
                    // The cluster chain's head lives in a tenant entry of its own,
                    // which no request can name.
                    self.tenants.insert(ispb, TenantState::new(ispb, TenantSettings::default()));
                    pending.tenants.insert(ispb);
                }
                CommandResult::Audited(self.tenants.contains_key(&ispb))
            }
            Command::AuditSeal { .. }
            | Command::AuditPurge { .. }
            | Command::PurgeRetained { .. }
            | Command::PurgeDedupe { .. } => {
                unreachable!("answered above")
            }
        };
        if let CommandResult::Handout(handout) = &mut result
            && !handout.seqs.is_empty()
        {
            handout.messages = self.messages_at(&ispb, &handout.seqs, pending)?;
        }
        describe(&result, &mut event);
        self.audit(ispb, event, batch, pending)?;
        Ok(result)
    }

    /// Chains `event` onto `ispb`'s audit log (nothing for an ISPB with no tenant).
    fn audit(
        &mut self,
        ispb: Ispb,
        mut event: AuditEvent,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<()> {
        if !self.tenants.contains_key(&ispb) || !(self.audit || event.action.always_recorded()) {
            return Ok(());
        }
        if event.resource_ids.len() != event.seqs.len() {
            event.resource_ids = self.resource_ids(&ispb, &event.seqs, pending)?;
        }
        let Some(tenant) = self.tenants.get_mut(&ispb) else { return Ok(()) };
        let head = &mut tenant.audit;
        let record = AuditRecord::chained(ispb, head.next, head.last, event);
        batch.put_cf(self.store.cf(columns::AUDIT)?, record_key(&ispb, record.seq), encode(&record));
        pending.audited.insert((ispb, record.seq), record.hash);
        pending.audit_written_from.entry(ispb).or_insert(record.seq);
        head.next += 1;
        head.last = record.hash;
        pending.tenants.insert(ispb);
        Ok(())
    }

    /// The messages at `seqs`, in order (appended by this apply, or stored; one read
    /// for all the stored ones); a seq no longer stored is left out.
    fn messages_at(&self, ispb: &Ispb, seqs: &[Seq], pending: &Pending) -> Result<Vec<StoredMessage>> {
        let stored: Vec<Seq> =
            seqs.iter().copied().filter(|seq| !pending.appended.contains_key(&(*ispb, *seq))).collect();
        let mut read = self.store.read_messages(ispb, &stored)?.into_iter().peekable();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(message) = pending.appended.get(&(*ispb, *seq)) {
                out.push(message.clone());
            } else if let Some(message) = read.next_if(|m| m.seq == *seq) {
                out.push(message);
            }
        }
        Ok(out)
    }

    /// The `PI-ResourceId`s of `seqs` (appended by this apply, or stored).
    fn resource_ids(&self, ispb: &Ispb, seqs: &[Seq], pending: &Pending) -> Result<Vec<String>> {
        let cf = self.store.cf(columns::MESSAGES)?;
        seqs.iter()
            .map(|seq| {
                if let Some(message) = pending.appended.get(&(*ispb, *seq)) {
                    return Ok(message.resource_id.clone());
                }
                self.store.count_message_reads(1);
                match self.store.db().get_pinned_cf(cf, keys::message_key(ispb, *seq))? {
                    Some(bytes) => Ok(crate::message::resource_id_of(&bytes)?),
                    None => Ok(String::new()),
                }
            })
            .collect()
    }

    /// Stores `checkpoint` if it seals a record of its chain after the last one sealed.
    fn seal(&mut self, checkpoint: Checkpoint, batch: &mut WriteBatch, pending: &mut Pending) -> Result<CommandResult> {
        let ispb = checkpoint.chain;
        let Some(tenant) = self.tenants.get(&ispb) else { return Ok(CommandResult::Audited(false)) };
        let head = &tenant.audit;
        if checkpoint.upto <= head.sealed || checkpoint.upto >= head.next || checkpoint.upto < head.first {
            return Ok(CommandResult::Audited(false));
        }
        let hash = match pending.audited.get(&(ispb, checkpoint.upto)) {
            Some(hash) => Some(*hash),
            None => self
                .store
                .get(columns::AUDIT, &record_key(&ispb, checkpoint.upto))?
                .map(|bytes| decode::<AuditRecord>(columns::AUDIT, &bytes))
                .transpose()?
                .map(|r| r.hash),
        };
        if hash != Some(checkpoint.hash) {
            return Ok(CommandResult::Audited(false));
        }
        batch.put_cf(self.store.cf(columns::AUDIT)?, checkpoint_key(&ispb, checkpoint.upto), encode(&checkpoint));
        if let Some(tenant) = self.tenants.get_mut(&ispb) {
            tenant.audit.sealed = checkpoint.upto;
        }
        pending.tenants.insert(ispb);
        Ok(CommandResult::Audited(true))
    }

    /// Deletes audit records older than `before_ms` (never ones this apply wrote).
    fn purge_audit(
        &mut self,
        ispb: Ispb,
        before_ms: u64,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let Some(tenant) = self.tenants.get(&ispb) else { return Ok(CommandResult::Audited(false)) };
        let limit = pending.audit_written_from.get(&ispb).copied().unwrap_or(tenant.audit.next);
        let first = self.store.purge_audit(&ispb, &tenant.audit, before_ms, limit, batch)?;
        let moved = first != tenant.audit.first;
        if let Some(tenant) = self.tenants.get_mut(&ispb) {
            tenant.audit.first = first;
        }
        if moved {
            pending.tenants.insert(ispb);
        }
        Ok(CommandResult::Audited(moved))
    }

    /// `Command::PurgeRetained`: one range delete of the ISPB's messages below
    /// `below`, when every one of them is confirmed and the newest is past retention.
    fn purge_retained(
        &mut self,
        ispb: Ispb,
        below: Seq,
        now_ms: u64,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let Some(tenant) = self.tenants.get(&ispb) else { return Ok(CommandResult::Purged(false)) };
        let cutoff = retention::cutoff_ms(tenant, now_ms);
        let newest_purged = below.checked_sub(1).and_then(|seq| self.store.read_messages(&ispb, &[seq]).ok()?.pop());
        let holds = tenant.settings.legal_hold.is_none()
            && below <= tenant.watermark
            && crate::replay::lowest_replayed(tenant, now_ms).is_none_or(|replayed| below <= replayed)
            && newest_purged.is_some_and(|m| m.enqueued_at_ms < cutoff);
        if !holds {
            return Ok(CommandResult::Purged(false));
        }
        let cf = self.store.cf(columns::MESSAGES)?;
        batch.delete_range_cf(cf, keys::message_key(&ispb, 0), keys::message_key(&ispb, below));
        let event = AuditEvent {
            at_ms: now_ms,
            origin: Origin::system("retention"),
            action: AuditAction::RetentionPurge,
            stream: None,
            confirmed: Vec::new(),
            seqs: Vec::new(),
            resource_ids: Vec::new(),
            outcome: format!("messages below seq {below}, enqueued before {cutoff} ms"),
        };
        self.audit(ispb, event, batch, pending)?;
        Ok(CommandResult::Purged(true))
    }

    /// The dedupe record under `key`: written by this apply, or stored.
    fn dedupe_record(&self, key: &[u8], pending: &Pending) -> Result<Option<DedupeRecord>> {
        if let Some(record) = pending.dedupe.get(key) {
            return Ok(Some(record.clone()));
        }
        self.store.get(columns::DEDUPE, key)?.map(|bytes| decode::<DedupeRecord>(columns::DEDUPE, &bytes)).transpose()
    }

    /// `Command::PurgeDedupe`: each listed key whose record is older than `before_ms`.
    fn purge_dedupe(
        &mut self,
        ispb: Ispb,
        before_ms: u64,
        names: &[String],
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let cf = self.store.cf(columns::DEDUPE)?;
        let mut purged = false;
        for name in names {
            let key = keys::dedupe_key(&ispb, name);
            if self.dedupe_record(&key, pending)?.is_some_and(|r| r.at_ms < before_ms) {
                batch.delete_cf(cf, &key);
                pending.dedupe.remove(&key);
                purged = true;
            }
        }
        Ok(CommandResult::Purged(purged))
    }

    /// `Command::MoveCursor`: the watermark to `to`, every open stream closed.
    fn move_cursor(
        &mut self,
        ispb: Ispb,
        to: Seq,
        reason: String,
        event: &mut AuditEvent,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let Some(tenant) = self.tenants.get(&ispb).filter(|t| t.is_live()) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        let first = retention::first_stored_seq(&self.store, tenant)?.unwrap_or(tenant.next_seq).min(tenant.watermark);
        if to < first || to > tenant.next_seq {
            return Ok(CommandResult::Rejected(Rejection::CursorOutOfRange { first, next: tenant.next_seq }));
        }
        let from = tenant.watermark;
        if to > from && reason.trim().is_empty() {
            return Ok(CommandResult::Rejected(Rejection::ReasonRequired));
        }
        let Some(tenant) = self.tenants.get_mut(&ispb) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        let closed: Vec<StreamId> = tenant.streams.keys().copied().collect();
        for id in &closed {
            pending.streams.insert((ispb, *id));
        }
        tenant.streams.clear();
        tenant.confirmed_above.clear();
        tenant.redeliver.clear();
        tenant.watermark = to;
        tenant.next_hand = to;
        pending.tenants.insert(ispb);
        wake(&mut self.woken, ispb, Wake::Streams);
        let direction = if to < from { "back" } else { "forward" };
        event.outcome = format!("watermark {from} {direction} to {to}, {} streams closed: {reason}", closed.len());
        Ok(CommandResult::CursorMoved { from, to, closed_streams: closed.len() })
    }

    /// `Command::DeleteTenant`: messages and dedupe keys deleted by range, streams
    /// closed, the record kept (deleted) for its audit chain and seqs.
    #[allow(clippy::too_many_arguments)]
    fn delete_tenant(
        &mut self,
        ispb: Ispb,
        force: bool,
        reason: &str,
        now_ms: u64,
        event: &mut AuditEvent,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let Some(tenant) = self.tenants.get_mut(&ispb).filter(|t| t.is_live()) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        if tenant.settings.legal_hold.is_some() {
            return Ok(CommandResult::Rejected(Rejection::UnderLegalHold));
        }
        let (backlog, open_streams) = (tenant.backlog(), tenant.open_streams());
        if (backlog > 0 || open_streams > 0) && !force {
            return Ok(CommandResult::Rejected(Rejection::TenantNotEmpty { backlog, open_streams }));
        }
        if force && reason.trim().is_empty() {
            return Ok(CommandResult::Rejected(Rejection::ReasonRequired));
        }
        let closed: Vec<StreamId> = std::mem::take(&mut tenant.streams).into_keys().collect();
        for id in &closed {
            pending.streams.insert((ispb, *id));
        }
        tenant.confirmed_above.clear();
        tenant.redeliver.clear();
        tenant.watermark = tenant.next_seq;
        tenant.next_hand = tenant.next_seq;
        tenant.deleted_at_ms = Some(now_ms);
        tenant.replays.clear();
        let prefix = ispb.as_bytes();
        batch.delete_range_cf(
            self.store.cf(columns::MESSAGES)?,
            keys::message_key(&ispb, 0),
            keys::message_key(&ispb, u64::MAX),
        );
        batch.delete_range_cf(self.store.cf(columns::DEDUPE)?, prefix.as_slice(), keys::prefix_end(prefix).as_slice());
        pending.dedupe.retain(|key, _| !key.starts_with(prefix));
        pending.tenants.insert(ispb);
        wake(&mut self.woken, ispb, Wake::Streams);
        let why = if reason.trim().is_empty() { String::new() } else { format!(": {reason}") };
        event.outcome =
            format!("deleted, {backlog} unconfirmed messages discarded, {} streams closed{why}", closed.len());
        Ok(CommandResult::TenantDeleted { discarded: backlog, closed_streams: closed.len() })
    }

    /// `Command::OpenReplay`: a replay from `from` to the log's end, expired replays
    /// dropped first.
    #[allow(clippy::too_many_arguments)]
    fn open_replay(
        &mut self,
        ispb: Ispb,
        from: Seq,
        limit: u32,
        lifetime_ms: u64,
        now_ms: u64,
        event: &mut AuditEvent,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let Some(tenant) = self.tenants.get(&ispb).filter(|t| t.is_live()) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        let first = retention::first_stored_seq(&self.store, tenant)?.unwrap_or(tenant.next_seq);
        if from < first || from > tenant.next_seq {
            return Ok(CommandResult::Rejected(Rejection::CursorOutOfRange { first, next: tenant.next_seq }));
        }
        let Some(tenant) = self.tenants.get_mut(&ispb) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        let open = tenant.replays.values().filter(|r| r.is_open_at(now_ms)).count() as u32;
        if open >= limit {
            return Ok(CommandResult::Rejected(Rejection::TooManyStreams { open, limit }));
        }
        tenant.replays.retain(|_, r| r.is_open_at(now_ms));
        let replay = crate::ReplayState {
            id: tenant.next_stream_id,
            from,
            end: tenant.next_seq,
            opened_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
        };
        tenant.next_stream_id += 1;
        tenant.replays.insert(replay.id, replay.clone());
        pending.tenants.insert(ispb);
        event.stream = Some(replay.id);
        event.outcome = format!("replay {} of seqs {} to {}", replay.id, replay.from, replay.end.saturating_sub(1));
        Ok(CommandResult::ReplayOpened { replay, open: open + 1, limit })
    }

    fn tenant_or_create(
        &mut self,
        ispb: Ispb,
        auto_create: Option<TenantSettings>,
        pending: &mut Pending,
    ) -> Option<&mut TenantState> {
        match self.tenants.entry(ispb) {
            std::collections::btree_map::Entry::Occupied(entry) if entry.get().is_live() => Some(entry.into_mut()),
            std::collections::btree_map::Entry::Occupied(entry) => {
                // Created again: the audit chain and the seqs go on from the deleted record.
                let settings = auto_create?;
                let tenant = entry.into_mut();
                tenant.settings = settings;
                tenant.deleted_at_ms = None;
                pending.tenants.insert(ispb);
                Some(tenant)
            }
            std::collections::btree_map::Entry::Vacant(entry) => {
                let settings = auto_create?;
                pending.tenants.insert(ispb);
                Some(entry.insert(TenantState::new(ispb, settings)))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        ispb: Ispb,
        now_ms: u64,
        auto_create: Option<TenantSettings>,
        dedupe_window_ms: u64,
        messages: Vec<NewMessage>,
        batch: &mut WriteBatch,
        pending: &mut Pending,
    ) -> Result<CommandResult> {
        let store = self.store.clone();
        // Resolve duplicates first (reads only), so a rejection changes nothing.
        let mut known = Vec::with_capacity(messages.len());
        for message in &messages {
            let key = keys::dedupe_key(&ispb, &message.dedupe_key);
            known
                .push(self.dedupe_record(&key, pending)?.filter(|r| now_ms.saturating_sub(r.at_ms) < dedupe_window_ms));
        }
        let Some(tenant) = self.tenant_or_create(ispb, auto_create, pending) else {
            return Ok(CommandResult::Rejected(Rejection::TenantNotFound));
        };
        let new_count = known.iter().filter(|k| k.is_none()).count() as u64;
        if new_count > 0 && tenant.backlog() + new_count > tenant.settings.max_backlog {
            return Ok(CommandResult::Rejected(Rejection::Backpressure {
                backlog: tenant.backlog(),
                limit: tenant.settings.max_backlog,
            }));
        }
        let messages_cf = store.cf(columns::MESSAGES)?;
        let dedupe_cf = store.cf(columns::DEDUPE)?;
        let mut outcomes = Vec::with_capacity(messages.len());
        for (message, known) in messages.into_iter().zip(known) {
            let dedupe_key = keys::dedupe_key(&ispb, &message.dedupe_key);
            // A repeat earlier in this same command counts as a duplicate too.
            let known = known.or_else(|| pending.dedupe.get(&dedupe_key).cloned());
            if let Some(original) = known {
                outcomes.push(AppendOutcome { seq: original.seq, resource_id: original.resource_id, duplicate: true });
                continue;
            }
            let seq = tenant.next_seq;
            tenant.next_seq += 1;
            let stored = StoredMessage {
                seq,
                resource_id: message.resource_id.clone(),
                msg_type: message.msg_type.clone(),
                enqueued_at_ms: now_ms,
                body: message.body.clone(),
            };
            let record = MessageRecord {
                resource_id: message.resource_id.clone(),
                msg_type: message.msg_type,
                enqueued_at_ms: now_ms,
                body: message.body,
            };
            batch.put_cf(messages_cf, keys::message_key(&ispb, seq), encode(&record));
            let dedupe = DedupeRecord { seq, resource_id: message.resource_id.clone(), at_ms: now_ms };
            batch.put_cf(dedupe_cf, &dedupe_key, encode(&dedupe));
            pending.dedupe.insert(dedupe_key, dedupe);
            pending.appended.insert((ispb, seq), stored);
            outcomes.push(AppendOutcome { seq, resource_id: message.resource_id, duplicate: false });
        }
        if new_count > 0 {
            pending.tenants.insert(ispb);
            wake(&mut self.woken, ispb, Wake::Available);
        }
        Ok(CommandResult::Appended(outcomes))
    }

    fn open_stream(
        &mut self,
        ispb: Ispb,
        now_ms: u64,
        max_batch: u32,
        auto_create: Option<TenantSettings>,
        pending: &mut Pending,
    ) -> CommandResult {
        let Some(tenant) = self.tenant_or_create(ispb, auto_create, pending) else {
            return CommandResult::Rejected(Rejection::TenantNotFound);
        };
        if tenant.settings.paused {
            return CommandResult::Rejected(Rejection::TenantPaused);
        }
        let limit = tenant.settings.max_streams;
        if tenant.open_streams() >= limit {
            return CommandResult::Rejected(Rejection::TooManyStreams { open: tenant.open_streams(), limit });
        }
        let id = tenant.next_stream_id;
        tenant.next_stream_id += 1;
        let seqs = tenant.take_available(max_batch as usize);
        let generation = u64::from(!seqs.is_empty());
        let stream = StreamState { id, generation, batch: seqs.clone(), handed_at_ms: now_ms, opened_at_ms: now_ms };
        tenant.streams.insert(id, stream);
        pending.tenants.insert(ispb);
        pending.streams.insert((ispb, id));
        CommandResult::Handout(Handout {
            stream: id,
            generation,
            handed_at_ms: now_ms,
            seqs,
            messages: Vec::new(),
            fresh: true,
            open_streams: tenant.open_streams(),
            max_streams: limit,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn pull(
        &mut self,
        ispb: Ispb,
        id: StreamId,
        generation: u64,
        max_batch: u32,
        now_ms: u64,
        event: &mut AuditEvent,
        pending: &mut Pending,
    ) -> CommandResult {
        let Some(tenant) = self.tenants.get_mut(&ispb) else {
            return CommandResult::Rejected(Rejection::StreamClosed);
        };
        if tenant.settings.paused {
            return CommandResult::Rejected(Rejection::TenantPaused);
        }
        let (open_streams, max_streams) = (tenant.open_streams(), tenant.settings.max_streams);
        let Some(stream) = tenant.streams.get(&id) else {
            return CommandResult::Rejected(Rejection::StreamClosed);
        };
        let current = stream.generation;
        if generation + 1 == current {
            return CommandResult::Handout(Handout {
                stream: id,
                generation: current,
                handed_at_ms: stream.handed_at_ms,
                seqs: stream.batch.clone(),
                messages: Vec::new(),
                fresh: false,
                open_streams,
                max_streams,
            });
        }
        if generation < current {
            return CommandResult::Rejected(Rejection::StaleCursor);
        }
        if generation > current {
            return CommandResult::Rejected(Rejection::UnknownGeneration);
        }
        let outstanding = stream.batch.clone();
        if !outstanding.is_empty() {
            tenant.confirm(&outstanding);
            event.confirmed.clone_from(&outstanding);
            pending.tenants.insert(ispb);
            pending.streams.insert((ispb, id));
        }
        let seqs = tenant.take_available(max_batch as usize);
        if !seqs.is_empty() {
            pending.tenants.insert(ispb);
            pending.streams.insert((ispb, id));
        }
        let stream = tenant.streams.get_mut(&id).expect("stream looked up above and not removed since");
        stream.batch.clone_from(&seqs);
        if !seqs.is_empty() {
            stream.generation += 1;
            stream.handed_at_ms = now_ms;
        }
        CommandResult::Handout(Handout {
            stream: id,
            generation: stream.generation,
            handed_at_ms: stream.handed_at_ms,
            seqs,
            messages: Vec::new(),
            fresh: true,
            open_streams,
            max_streams,
        })
    }

    fn close(
        &mut self,
        ispb: Ispb,
        id: StreamId,
        generation: u64,
        event: &mut AuditEvent,
        pending: &mut Pending,
    ) -> CommandResult {
        let Some(tenant) = self.tenants.get_mut(&ispb) else {
            return CommandResult::Rejected(Rejection::StreamClosed);
        };
        let Some(stream) = tenant.streams.get(&id) else {
            return CommandResult::Rejected(Rejection::StreamClosed);
        };
        let current = stream.generation;
        if generation > current {
            return CommandResult::Rejected(Rejection::UnknownGeneration);
        }
        if generation + 1 < current {
            return CommandResult::Rejected(Rejection::StaleCursor);
        }
        let stream = tenant.streams.remove(&id).expect("stream looked up above");
        pending.tenants.insert(ispb);
        pending.streams.insert((ispb, id));
        // Wake every reader either way: a long poll waiting on this stream answers now.
        wake(&mut self.woken, ispb, Wake::Streams);
        let (confirmed, redelivered) = if generation == current {
            tenant.confirm(&stream.batch);
            event.confirmed.clone_from(&stream.batch);
            (stream.batch.len(), 0)
        } else {
            tenant.return_for_redelivery(&stream.batch);
            event.seqs.clone_from(&stream.batch);
            event.outcome = "redelivered".to_owned();
            (0, stream.batch.len())
        };
        CommandResult::Closed {
            confirmed,
            redelivered,
            open_streams: tenant.open_streams(),
            max_streams: tenant.settings.max_streams,
        }
    }

    /// Closes the idle stream; returns the seqs it gave back, or `None` when the
    /// stream had moved on (or is gone).
    fn expire(&mut self, ispb: Ispb, id: StreamId, generation: u64, pending: &mut Pending) -> Option<Vec<Seq>> {
        let tenant = self.tenants.get_mut(&ispb)?;
        if tenant.streams.get(&id).is_none_or(|s| s.generation != generation) {
            return None;
        }
        let stream = tenant.streams.remove(&id).expect("stream looked up above");
        tenant.return_for_redelivery(&stream.batch);
        pending.tenants.insert(ispb);
        pending.streams.insert((ispb, id));
        if !stream.batch.is_empty() {
            wake(&mut self.woken, ispb, Wake::Available);
        }
        Some(stream.batch)
    }

    /// Writes every tenant and stream touched by this apply.
    fn write_pending(&self, pending: Pending, batch: &mut WriteBatch) -> Result<()> {
        let tenants_cf = self.store.cf(columns::TENANTS)?;
        let streams_cf = self.store.cf(columns::STREAMS)?;
        for ispb in &pending.tenants {
            if let Some(tenant) = self.tenants.get(ispb) {
                batch.put_cf(tenants_cf, ispb.as_bytes(), encode(tenant));
            }
        }
        for (ispb, id) in &pending.streams {
            let key = keys::stream_key(ispb, *id);
            match self.tenants.get(ispb).and_then(|t| t.streams.get(id)) {
                Some(stream) => batch.put_cf(streams_cf, key, encode(stream)),
                None => batch.delete_cf(streams_cf, key),
            }
        }
        Ok(())
    }

    /// What a read on `stream` with `generation` would do now, so that the server
    /// waits (long poll) instead of proposing a read that hands out nothing.
    pub fn read_outlook(&self, ispb: &Ispb, stream: StreamId, generation: u64) -> ReadOutlook {
        let Some(tenant) = self.tenants.get(ispb) else {
            return ReadOutlook::MUST_PROPOSE;
        };
        match tenant.streams.get(&stream) {
            Some(s) if s.generation == generation => {
                ReadOutlook { must_propose: !s.batch.is_empty(), available: tenant.available_count() }
            }
            _ => ReadOutlook::MUST_PROPOSE,
        }
    }
}

/// Records that `ispb`'s readers should look again, for `why` or a wider reason.
fn wake(woken: &mut BTreeMap<Ispb, Wake>, ispb: Ispb, why: Wake) {
    let entry = woken.entry(ispb).or_insert(why);
    *entry = entry.and(why);
}

/// Completes the audit event of a command from what applying it produced.
fn describe(result: &CommandResult, event: &mut AuditEvent) {
    match result {
        CommandResult::Appended(outcomes) => {
            event.seqs = outcomes.iter().filter(|o| !o.duplicate).map(|o| o.seq).collect();
            let duplicates = outcomes.len() - event.seqs.len();
            if duplicates > 0 {
                event.outcome = format!("ok, {duplicates} duplicates");
            }
        }
        CommandResult::Handout(handout) => {
            event.stream = Some(handout.stream);
            event.seqs.clone_from(&handout.seqs);
            if handout.messages.len() == handout.seqs.len() {
                event.resource_ids = handout.messages.iter().map(|m| m.resource_id.clone()).collect();
            }
            if !handout.fresh {
                event.action = AuditAction::StreamRepeat;
            }
        }
        CommandResult::Rejected(rejection) => {
            event.outcome = format!("refused: {rejection:?}");
            event.confirmed.clear();
            event.seqs.clear();
        }
        CommandResult::TenantUpserted | CommandResult::Closed { .. } | CommandResult::Expired(_) => {}
        CommandResult::Audited(_) | CommandResult::Purged(_) | CommandResult::CursorMoved { .. } => {}
        CommandResult::TenantDeleted { .. } | CommandResult::ReplayOpened { .. } | CommandResult::ReplayClosed(_) => {}
    }
}

/// What a read would do, judged from the applied state (`ShardMachine::read_outlook`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOutlook {
    /// The read changes state whatever is available: it confirms an outstanding batch,
    /// or its answer (a rejection, an unknown stream) must come from the log.
    pub must_propose: bool,
    /// Messages a read could hand out now (redeliveries and new ones), across the
    /// ISPB's streams.
    pub available: u64,
}

impl ReadOutlook {
    /// A read whose outcome only a proposal can tell.
    pub const MUST_PROPOSE: ReadOutlook = ReadOutlook { must_propose: true, available: 0 };
}
