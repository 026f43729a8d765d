//! Model-based property test of the shard state machine: random sequences of
//! appends, opens, pulls (current, previous and stale tokens), closes and expiries
//! run against `ShardMachine` on a real RocksDB, checked after every step against a
//! plain-set model of what SPEC.md §2.3 promises: no message lost, never outstanding
//! in two streams, watermark contiguous, redeliveries first and lowest first, retry
//! returns the same batch, at most `max_streams` open. At the end the state is
//! reloaded from disk and must equal the in-memory state.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use rocksdb::WriteBatch;
use storage::{
    Command, CommandResult, Handout, Ispb, NewMessage, Rejection, ShardMachine, Store, StoreOptions, TenantSettings,
};

const MAX_STREAMS: u32 = 3;

#[derive(Clone, Copy, Debug)]
enum Token {
    Current,
    Previous,
    Stale,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        tenant: usize,
        count: usize,
        repeat_earlier: bool,
    },
    Open {
        tenant: usize,
        max: u32,
    },
    Pull {
        tenant: usize,
        stream: usize,
        token: Token,
        max: u32,
    },
    Close {
        tenant: usize,
        stream: usize,
        previous: bool,
    },
    Expire {
        tenant: usize,
        stream: usize,
    },
    /// A retention purge a retention later: up to the purge point the leader
    /// computes (`None`), or below an arbitrary seq, which must hold or do nothing.
    Purge {
        tenant: usize,
        below: Option<u64>,
    },
    /// An operator moves the watermark to `to` (a reason given or not).
    Cursor {
        tenant: usize,
        to: u64,
        reason: bool,
    },
    /// An operator deletes the tenant (forced or not, a reason given or not); it is
    /// created again at once, continuing its seqs and its audit chain.
    Delete {
        tenant: usize,
        force: bool,
        reason: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let tenant = 0..2usize;
    let token = prop_oneof![6 => Just(Token::Current), 2 => Just(Token::Previous), 1 => Just(Token::Stale)];
    prop_oneof![
        4 => (tenant.clone(), 1..5usize, any::<bool>()).prop_map(|(tenant, count, r)| Op::Append { tenant, count, repeat_earlier: r }),
        2 => (tenant.clone(), 1..=10u32).prop_map(|(tenant, max)| Op::Open { tenant, max }),
        8 => (tenant.clone(), 0..5usize, token, 1..=10u32).prop_map(|(tenant, stream, token, max)| Op::Pull { tenant, stream, token, max }),
        1 => (tenant.clone(), 0..5usize, any::<bool>()).prop_map(|(tenant, stream, previous)| Op::Close { tenant, stream, previous }),
        1 => (tenant.clone(), 0..5usize).prop_map(|(tenant, stream)| Op::Expire { tenant, stream }),
        1 => (tenant.clone(), proptest::option::of(1..30u64)).prop_map(|(tenant, below)| Op::Purge { tenant, below }),
        1 => (tenant.clone(), 0..30u64, any::<bool>()).prop_map(|(tenant, to, reason)| Op::Cursor { tenant, to, reason }),
        1 => (tenant, any::<bool>(), any::<bool>()).prop_map(|(tenant, force, reason)| Op::Delete { tenant, force, reason }),
    ]
}

/// What a client knows of one of its streams.
#[derive(Clone, Debug)]
struct ClientStream {
    id: u64,
    generation: u64,
    batch: Vec<u64>,
    open: bool,
}

/// The reference model of one ISPB.
#[derive(Default)]
struct Model {
    appended: u64,
    confirmed: BTreeSet<u64>,
    /// Returned for redelivery and not handed out since.
    returned: BTreeSet<u64>,
    /// Never handed out yet: seqs above this were never given to anyone.
    next_new: u64,
    streams: Vec<ClientStream>,
    dedupe_keys: Vec<String>,
    /// The seq the first of `dedupe_keys` was stored under.
    first_keyed_seq: u64,
    /// Seqs below this were purged.
    purged_below: u64,
}

impl Model {
    fn outstanding(&self) -> BTreeSet<u64> {
        self.streams.iter().filter(|s| s.open).flat_map(|s| s.batch.iter().copied()).collect()
    }

    /// The batch SPEC.md's order rule requires: returned first (lowest first), then
    /// never-handed seqs, as many as available up to `max`.
    fn expected_batch(&self, max: u32) -> Vec<u64> {
        let mut out: Vec<u64> = self.returned.iter().copied().take(max as usize).collect();
        let mut seq = self.next_new;
        while out.len() < max as usize && seq <= self.appended {
            out.push(seq);
            seq += 1;
        }
        out
    }

    fn hand_out(&mut self, batch: &[u64]) {
        for seq in batch {
            if !self.returned.remove(seq) {
                assert_eq!(*seq, self.next_new, "new seqs are handed in order");
                self.next_new += 1;
            }
        }
    }

    fn confirm(&mut self, batch: &[u64]) {
        self.confirmed.extend(batch.iter().copied());
    }

    fn give_back(&mut self, batch: &[u64]) {
        self.returned.extend(batch.iter().copied());
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    machine: ShardMachine,
    ispbs: [Ispb; 2],
    models: [Model; 2],
    clock: u64,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            Store::open(dir.path(), StoreOptions { fsync: false, ..StoreOptions::default() }).expect("open store");
        let machine = ShardMachine::load(store.clone(), 0, 1).expect("load");
        let ispbs = [Ispb::parse("32074986").expect("valid"), Ispb::parse("99999A03").expect("valid")];
        let mut h =
            Harness { _dir: dir, store, machine, ispbs, models: [Model::default(), Model::default()], clock: 1_000 };
        for m in &mut h.models {
            m.next_new = 1;
            m.purged_below = 1;
        }
        for ispb in ispbs {
            let settings = TenantSettings { max_streams: MAX_STREAMS, ..TenantSettings::default() };
            assert_eq!(
                h.apply(Command::UpsertTenant { ispb, settings, now_ms: 0, origin: Default::default() }),
                CommandResult::TenantUpserted
            );
        }
        h
    }

    fn apply(&mut self, command: Command) -> CommandResult {
        self.clock += 7;
        let mut batch = WriteBatch::default();
        let mut results = self.machine.apply(vec![command], &mut batch).expect("apply");
        self.store.write_durable(batch).expect("write");
        results.pop().expect("one result per command")
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Append { tenant, count, repeat_earlier } => self.append(tenant, count, repeat_earlier),
            Op::Open { tenant, max } => self.open(tenant, max),
            Op::Pull { tenant, stream, token, max } => self.pull(tenant, stream, token, max),
            Op::Close { tenant, stream, previous } => self.close(tenant, stream, previous),
            Op::Expire { tenant, stream } => self.expire(tenant, stream),
            Op::Purge { tenant, below } => self.purge(tenant, below),
            Op::Cursor { tenant, to, reason } => self.move_cursor(tenant, to, reason),
            Op::Delete { tenant, force, reason } => self.delete(tenant, force, reason),
        }
        self.check_invariants();
    }

    fn append(&mut self, tenant: usize, count: usize, repeat_earlier: bool) {
        let model = &self.models[tenant];
        let repeat = if repeat_earlier { model.dedupe_keys.first().cloned() } else { None };
        let mut messages = Vec::new();
        let mut fresh_keys = Vec::new();
        for i in 0..count {
            let key = match (&repeat, i) {
                (Some(k), 0) => k.clone(),
                _ => format!("key-{}-{}", model.dedupe_keys.len() + fresh_keys.len(), self.clock),
            };
            if repeat.is_none() || i > 0 {
                fresh_keys.push(key.clone());
            }
            messages.push(NewMessage {
                resource_id: format!("rid-{key}"),
                dedupe_key: key,
                msg_type: "pacs.008.spi.1.14".into(),
                body: Bytes::from_static(b"<Envelope/>"),
            });
        }
        let now_ms = self.clock;
        let command = Command::Append {
            ispb: self.ispbs[tenant],
            now_ms,
            auto_create: None,
            dedupe_window_ms: 86_400_000,
            messages,
            origin: Default::default(),
        };
        let CommandResult::Appended(outcomes) = self.apply(command) else { panic!("append refused") };
        let model = &mut self.models[tenant];
        for (i, outcome) in outcomes.iter().enumerate() {
            if repeat.is_some() && i == 0 {
                assert!(outcome.duplicate, "a repeated dedupe key is not stored again");
                assert_eq!(outcome.seq, model.first_keyed_seq, "the repeat reports the original seq");
            } else {
                model.appended += 1;
                assert!(!outcome.duplicate);
                assert_eq!(outcome.seq, model.appended, "seqs are contiguous");
            }
        }
        if model.dedupe_keys.is_empty()
            && let Some(first) = outcomes.iter().find(|o| !o.duplicate)
        {
            model.first_keyed_seq = first.seq;
        }
        model.dedupe_keys.extend(fresh_keys);
    }

    fn open(&mut self, tenant: usize, max: u32) {
        let open_before = self.models[tenant].streams.iter().filter(|s| s.open).count() as u32;
        let expected = self.models[tenant].expected_batch(max);
        let command = Command::OpenStream {
            ispb: self.ispbs[tenant],
            now_ms: self.clock,
            max_batch: max,
            auto_create: None,
            origin: Default::default(),
        };
        match self.apply(command) {
            CommandResult::Handout(h) => {
                assert!(open_before < MAX_STREAMS);
                assert_eq!(h.seqs, expected, "first batch follows the order rule");
                let model = &mut self.models[tenant];
                model.hand_out(&h.seqs);
                model.streams.push(ClientStream { id: h.stream, generation: h.generation, batch: h.seqs, open: true });
            }
            CommandResult::Rejected(Rejection::TooManyStreams { open, limit }) => {
                assert_eq!((open, limit), (MAX_STREAMS, MAX_STREAMS));
                assert_eq!(open_before, MAX_STREAMS);
            }
            other => panic!("open: {other:?}"),
        }
    }

    fn pull(&mut self, tenant: usize, index: usize, token: Token, max: u32) {
        let Some(stream) = self.models[tenant].streams.get(index).cloned() else { return };
        let generation = match token {
            Token::Current => stream.generation,
            Token::Previous if stream.generation >= 1 => stream.generation - 1,
            Token::Stale if stream.generation >= 2 => stream.generation - 2,
            _ => return,
        };
        let command = Command::Pull {
            ispb: self.ispbs[tenant],
            stream: stream.id,
            generation,
            max_batch: max,
            now_ms: self.clock,
            origin: Default::default(),
        };
        let result = self.apply(command);
        if !stream.open {
            assert_eq!(result, CommandResult::Rejected(Rejection::StreamClosed));
            return;
        }
        match (token, result) {
            (Token::Current, CommandResult::Handout(h)) => self.after_fresh_pull(tenant, index, &stream, max, h),
            (Token::Previous, CommandResult::Handout(h)) => {
                assert!(!h.fresh);
                assert_eq!(h.seqs, stream.batch, "the previous token repeats the outstanding batch");
                assert_eq!(h.generation, stream.generation);
            }
            (Token::Stale, CommandResult::Rejected(Rejection::StaleCursor)) => {}
            (token, other) => panic!("pull {token:?}: {other:?}"),
        }
    }

    fn after_fresh_pull(&mut self, tenant: usize, index: usize, stream: &ClientStream, max: u32, h: Handout) {
        let model = &mut self.models[tenant];
        model.confirm(&stream.batch);
        let expected = model.expected_batch(max);
        assert!(h.fresh);
        assert_eq!(h.seqs, expected, "batch follows the order rule");
        model.hand_out(&h.seqs);
        let expected_generation = stream.generation + u64::from(!h.seqs.is_empty());
        assert_eq!(h.generation, expected_generation);
        let s = &mut model.streams[index];
        s.generation = h.generation;
        s.batch = h.seqs;
    }

    fn close(&mut self, tenant: usize, index: usize, previous: bool) {
        let Some(stream) = self.models[tenant].streams.get(index).cloned() else { return };
        if previous && stream.generation == 0 {
            return;
        }
        let generation = if previous { stream.generation - 1 } else { stream.generation };
        let result = self.apply(Command::CloseStream {
            ispb: self.ispbs[tenant],
            stream: stream.id,
            generation,
            now_ms: 0,
            origin: Default::default(),
        });
        let model = &mut self.models[tenant];
        if !stream.open {
            assert_eq!(result, CommandResult::Rejected(Rejection::StreamClosed));
            return;
        }
        let CommandResult::Closed { confirmed, redelivered, open_streams, .. } = result else {
            panic!("close: {result:?}")
        };
        let still_open = model.streams.iter().filter(|s| s.open).count() - 1;
        assert_eq!(open_streams as usize, still_open, "the slots after the close");
        if previous {
            assert_eq!((confirmed, redelivered), (0, stream.batch.len()));
            model.give_back(&stream.batch);
        } else {
            assert_eq!((confirmed, redelivered), (stream.batch.len(), 0));
            model.confirm(&stream.batch);
        }
        model.streams[index].open = false;
    }

    fn expire(&mut self, tenant: usize, index: usize) {
        let Some(stream) = self.models[tenant].streams.get(index).cloned() else { return };
        let result = self.apply(Command::ExpireIdle {
            ispb: self.ispbs[tenant],
            stream: stream.id,
            generation: stream.generation,
            now_ms: 0,
        });
        assert_eq!(result, CommandResult::Expired(stream.open));
        if stream.open {
            let model = &mut self.models[tenant];
            model.give_back(&stream.batch);
            model.streams[index].open = false;
        }
    }

    fn purge(&mut self, tenant: usize, below: Option<u64>) {
        let ispb = self.ispbs[tenant];
        let state = self.machine.tenant(&ispb).expect("tenant").clone();
        let now_ms = self.clock + state.settings.retention_secs * 1_000 + 1_000;
        let point = storage::retention::purge_point(&self.store, &state, now_ms).expect("purge point");
        let Some(below) = below.or(point) else { return };
        let result = self.apply(Command::PurgeRetained { ispb, below, now_ms });
        let model = &mut self.models[tenant];
        let holds = below <= state.watermark && below > model.purged_below;
        assert_eq!(result, CommandResult::Purged(holds), "purge below {below}, watermark {}", state.watermark);
        if holds {
            assert!((1..below).all(|seq| model.confirmed.contains(&seq)), "only confirmed seqs are purged");
            model.purged_below = below;
        }
    }

    fn move_cursor(&mut self, tenant: usize, to: u64, reason: bool) {
        let ispb = self.ispbs[tenant];
        let watermark = self.machine.tenant(&ispb).expect("tenant").watermark;
        let reason = if reason { "operator's reason".to_owned() } else { String::new() };
        let now_ms = self.clock;
        let command = Command::MoveCursor { ispb, to, now_ms, origin: Default::default(), reason: reason.clone() };
        let result = self.apply(command);
        let model = &mut self.models[tenant];
        let first = model.purged_below.min(watermark);
        let allowed = to >= first && to <= model.appended + 1 && (to <= watermark || !reason.is_empty());
        if !allowed {
            assert!(matches!(result, CommandResult::Rejected(_)), "move to {to} from {watermark}: {result:?}");
            return;
        }
        assert!(
            matches!(result, CommandResult::CursorMoved { from, to: moved, .. } if from == watermark && moved == to),
            "move to {to} from {watermark}: {result:?}"
        );
        model.confirmed = (1..to).collect();
        model.returned.clear();
        model.next_new = to;
        for stream in &mut model.streams {
            stream.open = false;
        }
    }

    fn delete(&mut self, tenant: usize, force: bool, reason: bool) {
        let ispb = self.ispbs[tenant];
        let before = self.machine.tenant(&ispb).expect("tenant").clone();
        let reason = if reason { "tenant leaves the SPI".to_owned() } else { String::new() };
        let command = Command::DeleteTenant {
            ispb,
            force,
            reason: reason.clone(),
            now_ms: self.clock,
            origin: Default::default(),
        };
        let result = self.apply(command);
        let model = &mut self.models[tenant];
        let backlog = model.appended - model.confirmed.len() as u64;
        let open = model.streams.iter().filter(|s| s.open).count() as u32;
        let empty = backlog == 0 && open == 0;
        match result {
            CommandResult::TenantDeleted { discarded, closed_streams } => {
                assert!(
                    empty || (force && !reason.is_empty()),
                    "deleted: empty {empty}, force {force}, reason {reason:?}"
                );
                assert_eq!((discarded, closed_streams), (backlog, open as usize));
            }
            CommandResult::Rejected(Rejection::TenantNotEmpty { backlog: b, open_streams: o }) => {
                assert!(!empty && !force);
                assert_eq!((b, o), (backlog, open));
                return;
            }
            CommandResult::Rejected(Rejection::ReasonRequired) => {
                assert!(force && reason.is_empty(), "only a forced delete without a reason");
                return;
            }
            other => panic!("delete answered {other:?}"),
        }
        assert!(self.machine.tenant(&ispb).is_none(), "a deleted tenant is gone");
        assert!(self.machine.record(&ispb).is_some(), "its record stays for the audit chain");
        model.confirmed = (1..=model.appended).collect();
        model.returned.clear();
        model.next_new = model.appended + 1;
        model.purged_below = model.appended + 1;
        model.dedupe_keys.clear();
        for stream in &mut model.streams {
            stream.open = false;
        }
        let settings = TenantSettings { max_streams: MAX_STREAMS, ..TenantSettings::default() };
        let created =
            self.apply(Command::UpsertTenant { ispb, settings, now_ms: self.clock, origin: Default::default() });
        assert_eq!(created, CommandResult::TenantUpserted);
        let after = self.machine.tenant(&ispb).expect("created again");
        assert_eq!(after.next_seq, before.next_seq, "seqs go on");
        assert!(
            after.audit.next > before.audit.next,
            "the audit chain goes on: {:?} then {:?}",
            before.audit,
            after.audit
        );
    }

    fn check_invariants(&self) {
        for (ispb, model) in self.ispbs.iter().zip(&self.models) {
            let tenant = self.machine.tenant(ispb).expect("tenant exists");
            // Never outstanding in two streams.
            let mut seen = BTreeSet::new();
            for s in model.streams.iter().filter(|s| s.open) {
                for seq in &s.batch {
                    assert!(seen.insert(*seq), "seq {seq} outstanding in two streams");
                }
                assert!(s.batch.windows(2).all(|w| w[0] < w[1]), "batch ascends");
                let state = tenant.streams.get(&s.id).expect("open stream is in the machine");
                assert_eq!(state.batch, s.batch);
            }
            assert!(tenant.open_streams() <= MAX_STREAMS);
            // No loss: every seq is confirmed, outstanding, or available again.
            let outstanding = model.outstanding();
            for seq in 1..=model.appended {
                let places = [
                    model.confirmed.contains(&seq),
                    outstanding.contains(&seq),
                    model.returned.contains(&seq) || seq >= model.next_new,
                ];
                assert_eq!(places.iter().filter(|p| **p).count(), 1, "seq {seq} in exactly one place: {places:?}");
            }
            // Watermark: the lowest unconfirmed seq, never past an unconfirmed one.
            let lowest_unconfirmed = (1..=model.appended + 1).find(|s| !model.confirmed.contains(s)).expect("bounded");
            assert_eq!(tenant.watermark, lowest_unconfirmed);
            assert_eq!(tenant.backlog(), model.appended - model.confirmed.len() as u64);
            assert_eq!(tenant.next_seq, model.appended + 1);
            // Purged: exactly the seqs below the last purge; every unconfirmed one stored.
            let seqs: Vec<u64> = (1..=model.appended).collect();
            let stored: BTreeSet<u64> =
                self.store.read_messages(ispb, &seqs).expect("read").iter().map(|m| m.seq).collect();
            for seq in seqs {
                assert_eq!(stored.contains(&seq), seq >= model.purged_below, "seq {seq} stored iff not purged");
            }
        }
    }

    fn check_reload(&self) {
        let reloaded = ShardMachine::load(self.store.clone(), 0, 1).expect("reload");
        for ispb in &self.ispbs {
            assert_eq!(reloaded.tenant(ispb), self.machine.tenant(ispb), "state on disk equals state in memory");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn machine_keeps_every_delivery_promise(ops in proptest::collection::vec(op(), 1..80)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.run(op);
        }
        harness.check_reload();
    }
}

#[test]
fn one_stream_receives_the_log_in_order_without_gaps_or_duplicates() {
    let mut h = Harness::new();
    h.append(0, 4, false);
    h.open(0, 3);
    h.append(0, 4, false);
    let mut received: Vec<u64> = h.models[0].streams[0].batch.clone();
    for _ in 0..5 {
        h.pull(0, 0, Token::Current, 3);
        received.extend(h.models[0].streams[0].batch.iter().copied());
        h.check_invariants();
    }
    assert_eq!(received, (1..=8).collect::<Vec<_>>());
}

#[test]
fn messages_of_an_expired_stream_go_to_the_next_reader_first() {
    let mut h = Harness::new();
    h.append(0, 6, false);
    h.open(0, 2);
    h.open(0, 2);
    assert_eq!(h.models[0].streams[1].batch, vec![3, 4]);
    h.expire(0, 0);
    h.pull(0, 1, Token::Current, 10);
    assert_eq!(h.models[0].streams[1].batch, vec![1, 2, 5, 6]);
    h.check_invariants();
}
