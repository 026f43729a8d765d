//! Message retention on a real RocksDB store, with time in the commands (no sleeps):
//! confirmed messages past the tenant's retention go in one range delete; the
//! retention boundary is exact; unconfirmed messages — handed out, or back for
//! redelivery — are never purged however old; a purge that does not hold changes
//! nothing; a legal hold stops every purge; a restart in the middle keeps what was
//! purged and purges on from there.

use bytes::Bytes;
use rocksdb::WriteBatch;
use storage::audit::{AuditAction, AuditEntry, ExportRange, Origin};
use storage::retention::purge_point;
use storage::{Command, CommandResult, Handout, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings};

/// Retention of the tenants here: one minute.
const RETENTION_MS: u64 = 60_000;

struct Node {
    dir: tempfile::TempDir,
    store: Store,
    machine: ShardMachine,
    ispb: Ispb,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().expect("dir");
        let (store, machine) = Node::open(&dir);
        Node { dir, store, machine, ispb: Ispb::parse("32074986").expect("valid") }
    }

    fn open(dir: &tempfile::TempDir) -> (Store, ShardMachine) {
        let store = Store::open(dir.path(), StoreOptions { fsync: false, ..StoreOptions::default() }).expect("open");
        let machine = ShardMachine::load(store.clone(), 0, 1).expect("load");
        (store, machine)
    }

    /// Closes the store and opens it again, as a node restart does.
    fn restart(self) -> Node {
        let Node { dir, store, machine, ispb } = self;
        drop((machine, store));
        let (store, machine) = Node::open(&dir);
        Node { dir, store, machine, ispb }
    }

    fn apply(&mut self, command: Command) -> CommandResult {
        let mut batch = WriteBatch::default();
        let result = self.machine.apply(vec![command], &mut batch).expect("apply").remove(0);
        self.store.write_durable(batch).expect("write");
        result
    }

    fn append(&mut self, count: usize, at_ms: u64) {
        let settings = TenantSettings { retention_secs: RETENTION_MS / 1_000, ..TenantSettings::default() };
        let messages = (0..count)
            .map(|i| NewMessage {
                resource_id: format!("R{at_ms}-{i}"),
                dedupe_key: format!("D{at_ms}-{i}"),
                msg_type: "pacs.008.spi.1.14".into(),
                body: Bytes::from(format!("<Envelope>{at_ms}-{i}</Envelope>")),
            })
            .collect();
        let command = Command::Append {
            ispb: self.ispb,
            now_ms: at_ms,
            auto_create: Some(settings),
            dedupe_window_ms: 1_000_000,
            messages,
            origin: Origin::system("test"),
        };
        assert!(matches!(self.apply(command), CommandResult::Appended(_)));
    }

    fn open_stream(&mut self, max_batch: u32, at_ms: u64) -> Handout {
        let open = Command::OpenStream {
            ispb: self.ispb,
            now_ms: at_ms,
            max_batch,
            auto_create: None,
            origin: Origin::default(),
        };
        let CommandResult::Handout(handout) = self.apply(open) else { panic!("opened") };
        handout
    }

    /// Confirms `handout` and reads on (up to `max_batch`).
    fn read_on(&mut self, handout: &Handout, max_batch: u32, at_ms: u64) -> Handout {
        let pull = Command::Pull {
            ispb: self.ispb,
            stream: handout.stream,
            generation: handout.generation,
            max_batch,
            now_ms: at_ms,
            origin: Origin::default(),
        };
        let CommandResult::Handout(next) = self.apply(pull) else { panic!("read") };
        next
    }

    fn purge(&mut self, below: u64, now_ms: u64) -> CommandResult {
        self.apply(Command::PurgeRetained { ispb: self.ispb, below, now_ms })
    }

    fn point(&self, now_ms: u64) -> Option<u64> {
        purge_point(&self.store, self.machine.tenant(&self.ispb).expect("tenant"), now_ms).expect("purge point")
    }

    /// Which of `seqs` are still stored.
    fn stored(&self, seqs: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        let seqs: Vec<u64> = seqs.collect();
        self.store.read_messages(&self.ispb, &seqs).expect("read").iter().map(|m| m.seq).collect()
    }

    fn watermark(&self) -> u64 {
        self.machine.tenant(&self.ispb).expect("tenant").watermark
    }
}

#[test]
fn confirmed_messages_past_retention_go_in_one_range_and_the_boundary_is_exact() {
    let mut node = Node::new();
    node.append(5, 1_000); // seqs 1..=5
    node.append(5, 31_000); // seqs 6..=10
    let all = node.open_stream(10, 40_000);
    node.read_on(&all, 10, 40_001);
    assert_eq!(node.watermark(), 11, "everything confirmed");

    // One millisecond before the first five are past retention: nothing to do.
    assert_eq!(node.point(1_000 + RETENTION_MS), None);
    assert_eq!(node.purge(6, 1_000 + RETENTION_MS), CommandResult::Purged(false), "not yet past retention");
    assert_eq!(node.stored(1..=10), (1..=10).collect::<Vec<_>>());

    let now = 1_001 + RETENTION_MS;
    assert_eq!(node.point(now), Some(6), "the first five, not the young ones");
    assert_eq!(node.purge(6, now), CommandResult::Purged(true));
    assert_eq!(node.stored(1..=10), (6..=10).collect::<Vec<_>>());
    assert_eq!(node.point(now), None, "nothing more to purge now");

    // Later everything confirmed is past retention: the purge stops at the watermark.
    let later = 31_001 + RETENTION_MS;
    assert_eq!(node.point(later), Some(11));
    assert_eq!(node.purge(11, later), CommandResult::Purged(true));
    assert!(node.stored(1..=10).is_empty());

    let head = &node.machine.tenant(&node.ispb).expect("tenant").audit;
    let range = ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: true };
    let purges: Vec<String> = node
        .store
        .audit_export(&node.ispb, head, range)
        .expect("export")
        .into_iter()
        .filter_map(|e| match e {
            AuditEntry::Record(r) if r.action == AuditAction::RetentionPurge => Some(r.outcome),
            _ => None,
        })
        .collect();
    assert_eq!(purges.len(), 2, "each purge is audited, the refused one is not: {purges:?}");
    assert!(purges[0].starts_with("messages below seq 6"), "{purges:?}");
}

#[test]
fn unconfirmed_messages_are_never_purged_however_old() {
    let mut node = Node::new();
    node.append(6, 1_000);
    // Two handed out and never confirmed; the stream is then closed with the previous
    // token, so they wait for redelivery.
    let first = node.open_stream(2, 2_000);
    let second = node.read_on(&first, 2, 2_001);
    assert_eq!(node.watermark(), 3);
    let close = Command::CloseStream {
        ispb: node.ispb,
        stream: second.stream,
        generation: first.generation,
        now_ms: 2_002,
        origin: Origin::default(),
    };
    assert!(matches!(node.apply(close), CommandResult::Closed { redelivered: 2, .. }));
    let year = 365 * 24 * 3_600 * 1_000;
    assert_eq!(node.point(year), Some(3), "only the two confirmed ones");
    assert_eq!(node.purge(5, year), CommandResult::Purged(false), "past the watermark: refused");
    assert_eq!(node.stored(1..=6), (1..=6).collect::<Vec<_>>(), "a refused purge deletes nothing");
    assert_eq!(node.purge(3, year), CommandResult::Purged(true));
    assert_eq!(node.stored(1..=6), (3..=6).collect::<Vec<_>>(), "the redelivery set and the rest stay");
    // The redelivered batch still goes out whole.
    let again = node.open_stream(10, year + 1);
    assert_eq!(again.seqs, vec![3, 4, 5, 6]);
    assert_eq!(node.store.read_messages(&node.ispb, &again.seqs).expect("read").len(), 4);
}

#[test]
fn a_purge_that_does_not_hold_changes_nothing() {
    let mut node = Node::new();
    assert_eq!(node.purge(5, u64::MAX / 2), CommandResult::Purged(false), "no such tenant");
    node.append(3, 1_000);
    assert_eq!(node.point(u64::MAX / 2), None, "nothing confirmed");
    assert_eq!(node.purge(1, u64::MAX / 2), CommandResult::Purged(false), "below 1 is nothing");
    assert_eq!(node.purge(3, u64::MAX / 2), CommandResult::Purged(false), "unconfirmed");
    assert_eq!(node.stored(1..=3), vec![1, 2, 3]);
}

#[test]
fn a_restart_in_the_middle_keeps_what_was_purged_and_purges_on_from_there() {
    let mut node = Node::new();
    for minute in 0..4 {
        node.append(10, 1_000 + minute * 60_000);
    }
    let all = node.open_stream(40, 300_000);
    node.read_on(&all, 40, 300_001);
    let now = 1_000 + 2 * 60_000 + RETENTION_MS; // the first two minutes are past retention
    let below = node.point(now).expect("something to purge");
    assert_eq!(below, 21);
    assert_eq!(node.purge(below, now), CommandResult::Purged(true));
    let mut node = node.restart();
    assert_eq!(node.stored(1..=40), (21..=40).collect::<Vec<_>>(), "the purge survived the restart");
    assert_eq!(node.point(now), None);
    let later = now + 2 * 60_000;
    assert_eq!(node.point(later), Some(41));
    assert_eq!(node.purge(41, later), CommandResult::Purged(true));
    assert!(node.stored(1..=40).is_empty());
}

#[test]
fn a_legal_hold_stops_every_purge_until_it_is_lifted() {
    let mut node = Node::new();
    node.append(4, 1_000);
    let all = node.open_stream(4, 2_000);
    node.read_on(&all, 4, 2_001);
    let hold = |reason: Option<&str>| {
        let settings = TenantSettings {
            retention_secs: RETENTION_MS / 1_000,
            legal_hold: reason.map(str::to_owned),
            ..TenantSettings::default()
        };
        Command::UpsertTenant {
            ispb: Ispb::parse("32074986").expect("valid"),
            settings,
            now_ms: 3_000,
            origin: Origin::default(),
        }
    };
    assert_eq!(node.apply(hold(Some("court order 123"))), CommandResult::TenantUpserted);
    let year = 365 * 24 * 3_600 * 1_000;
    assert_eq!(node.point(year), None, "the purger finds nothing to do under a hold");
    assert_eq!(node.purge(5, year), CommandResult::Purged(false), "and a proposed purge does not apply");
    assert_eq!(node.stored(1..=4), vec![1, 2, 3, 4]);
    assert_eq!(node.apply(hold(None)), CommandResult::TenantUpserted);
    assert_eq!(node.point(year), Some(5));
    assert_eq!(node.purge(5, year), CommandResult::Purged(true));
    assert!(node.stored(1..=4).is_empty());
}

#[test]
fn an_open_replay_holds_the_purge_of_what_it_reads_until_it_ends_or_expires() {
    let mut node = Node::new();
    node.append(10, 1_000); // seqs 1..=10
    let all = node.open_stream(10, 2_000);
    node.read_on(&all, 10, 2_001);
    let now = 1_001 + RETENTION_MS;
    assert_eq!(node.point(now), Some(11), "without a replay everything confirmed may go");

    let open = |from| Command::OpenReplay {
        ispb: Ispb::parse("32074986").expect("valid"),
        from,
        limit: 2,
        lifetime_ms: 10_000,
        now_ms: now,
        origin: Origin::default(),
    };
    let CommandResult::ReplayOpened { replay, open: 1, limit: 2 } = node.apply(open(4)) else { panic!("opened") };
    assert_eq!((replay.from, replay.end, replay.expires_at_ms), (4, 11, now + 10_000));
    assert_eq!(node.point(now), Some(4), "the purge stops where the replay reads");
    assert_eq!(node.purge(11, now), CommandResult::Purged(false), "a purge past it does not hold");
    assert_eq!(node.purge(4, now), CommandResult::Purged(true));
    assert_eq!(node.stored(1..=10), (4..=10).collect::<Vec<_>>());
    assert!(matches!(
        node.apply(open(2)),
        CommandResult::Rejected(storage::Rejection::CursorOutOfRange { first: 4, .. })
    ));

    // Expired, it holds nothing any more.
    let expired = now + 10_000;
    assert_eq!(node.point(expired), Some(11));
    assert_eq!(node.purge(11, expired), CommandResult::Purged(true));
    assert!(node.stored(1..=10).is_empty());
}

#[test]
fn dedupe_keys_past_the_window_are_purged_and_only_those() {
    let mut node = Node::new();
    node.append(3, 1_000); // keys D1000-0..2
    node.append(2, 50_000); // keys D50000-0..1
    let (now, window) = (60_000, 30_000);
    let scan = storage::retention::expired_dedupe_keys(&node.store, &node.ispb, now - window, None, 100).expect("walk");
    assert_eq!(scan.expired, vec!["D1000-0", "D1000-1", "D1000-2"]);
    assert_eq!(scan.resume_after, None, "the walk reached the end");
    let sliced = storage::retention::expired_dedupe_keys(&node.store, &node.ispb, now - window, None, 2).expect("walk");
    assert_eq!((sliced.expired.len(), sliced.resume_after.as_deref()), (2, Some("D1000-1")));
    let rest = storage::retention::expired_dedupe_keys(&node.store, &node.ispb, now - window, Some("D1000-1"), 2);
    assert_eq!(rest.expect("walk").expired, vec!["D1000-2"]);

    // A young key listed by mistake stays: the replica checks each record's age.
    let mut keys = scan.expired.clone();
    keys.push("D50000-0".into());
    let purge = Command::PurgeDedupe { ispb: node.ispb, before_ms: now - window, keys };
    assert_eq!(node.apply(purge), CommandResult::Purged(true));
    let left = storage::retention::expired_dedupe_keys(&node.store, &node.ispb, u64::MAX, None, 100).expect("walk");
    assert_eq!(left.expired, vec!["D50000-0", "D50000-1"]);
    let again = Command::PurgeDedupe { ispb: node.ispb, before_ms: now - window, keys: vec!["D1000-0".into()] };
    assert_eq!(node.apply(again), CommandResult::Purged(false), "nothing left to purge changes nothing");
}
