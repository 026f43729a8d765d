//! The audit chain on a real RocksDB store: what the state machine records for each
//! command, sealing by signed checkpoints, export, retention — and that the verifier
//! finds a changed, removed, inserted or reordered record and a log cut short when
//! the store itself is tampered with.

use std::collections::HashMap;

use bytes::Bytes;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rocksdb::WriteBatch;
use storage::audit::{
    AuditAction, AuditEntry, AuditRecord, Checkpoint, ExportRange, Finding, Origin, VerifyReport, record_key,
    verify_entries,
};
use storage::db::{decode, encode};
use storage::{Command, CommandResult, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings, columns};

const ALL: ExportRange = ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: false };

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    machine: ShardMachine,
    ispb: Ispb,
    key: SigningKey,
}

fn origin(actor: &str) -> Origin {
    Origin { actor: actor.to_owned(), request_id: format!("req-{actor}") }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path(), StoreOptions { fsync: false, ..StoreOptions::default() }).expect("open");
        let machine = ShardMachine::load(store.clone(), 0, 1).expect("load");
        let ispb = Ispb::parse("32074986").expect("valid");
        Fixture { _dir: dir, store, machine, ispb, key: SigningKey::from_bytes(&[3; 32]) }
    }

    fn apply(&mut self, command: Command) -> CommandResult {
        let mut batch = WriteBatch::default();
        let result = self.machine.apply(vec![command], &mut batch).expect("apply").remove(0);
        self.store.write_durable(batch).expect("write");
        result
    }

    fn append(&mut self, count: usize, at_ms: u64) {
        let messages = (0..count)
            .map(|i| NewMessage {
                resource_id: format!("R{at_ms}-{i}"),
                dedupe_key: format!("D{at_ms}-{i}"),
                msg_type: "pacs.008.spi.1.14".into(),
                body: Bytes::from(format!("<Envelope>secret payload {i}</Envelope>")),
            })
            .collect();
        let command = Command::Append {
            ispb: self.ispb,
            now_ms: at_ms,
            auto_create: Some(TenantSettings::default()),
            dedupe_window_ms: 1_000_000,
            messages,
            origin: origin("token:producer"),
        };
        assert!(matches!(self.apply(command), CommandResult::Appended(_)));
    }

    /// A typical session: appends, a stream opened, read twice, retried, closed.
    fn session(&mut self, at_ms: u64) {
        self.append(3, at_ms);
        let open = Command::OpenStream {
            ispb: self.ispb,
            now_ms: at_ms + 1,
            max_batch: 2,
            auto_create: None,
            origin: origin("client:psp-a"),
        };
        let CommandResult::Handout(first) = self.apply(open) else { panic!("opened") };
        let ispb = self.ispb;
        let read = |generation| Command::Pull {
            ispb,
            stream: first.stream,
            generation,
            max_batch: 2,
            now_ms: at_ms + 2,
            origin: origin("client:psp-a"),
        };
        let CommandResult::Handout(second) = self.apply(read(first.generation)) else { panic!("read") };
        assert!(matches!(self.apply(read(first.generation)), CommandResult::Handout(h) if !h.fresh));
        let close = Command::CloseStream {
            ispb: self.ispb,
            stream: first.stream,
            generation: second.generation,
            now_ms: at_ms + 3,
            origin: origin("client:psp-a"),
        };
        assert!(matches!(self.apply(close), CommandResult::Closed { .. }));
    }

    /// Records a forbidden request of `client:psp-b` as an access event.
    fn forbidden(&mut self, at_ms: u64, outcome: &str) {
        let event = Command::Audit {
            ispb: self.ispb,
            now_ms: at_ms,
            origin: origin("client:psp-b"),
            action: AuditAction::Forbidden,
            outcome: outcome.into(),
        };
        assert_eq!(self.apply(event), CommandResult::Audited(true));
    }

    fn seal(&mut self, at_ms: u64) {
        let head = self.machine.tenant(&self.ispb).expect("tenant").audit.clone();
        let upto = head.newest().expect("records");
        let checkpoint = Checkpoint::sign(self.ispb, upto, head.last, at_ms, "a1", &self.key);
        assert_eq!(self.apply(Command::AuditSeal { checkpoint }), CommandResult::Audited(true));
    }

    fn export(&self, range: ExportRange) -> Vec<AuditEntry> {
        let head = &self.machine.tenant(&self.ispb).expect("tenant").audit;
        self.store.audit_export(&self.ispb, head, range).expect("export")
    }

    fn verify(&self) -> VerifyReport {
        verify_entries(&self.export(ALL), &self.keys())
    }

    fn keys(&self) -> HashMap<String, VerifyingKey> {
        HashMap::from([("a1".to_owned(), self.key.verifying_key())])
    }

    fn record(&self, seq: u64) -> AuditRecord {
        let bytes = self.store.get(columns::AUDIT, &record_key(&self.ispb, seq)).expect("read").expect("record");
        decode(columns::AUDIT, &bytes).expect("decodes")
    }

    fn put_raw(&self, seq: u64, record: &AuditRecord) {
        let cf = self.store.cf(columns::AUDIT).expect("family");
        self.store.db().put_cf(cf, record_key(&self.ispb, seq), encode(record)).expect("tamper");
    }

    fn delete_raw(&self, seq: u64) {
        let cf = self.store.cf(columns::AUDIT).expect("family");
        self.store.db().delete_cf(cf, record_key(&self.ispb, seq)).expect("tamper");
    }
}

fn records(entries: &[AuditEntry]) -> Vec<&AuditRecord> {
    entries
        .iter()
        .filter_map(|e| match e {
            AuditEntry::Record(r) => Some(r),
            AuditEntry::Checkpoint(_) => None,
        })
        .collect()
}

#[test]
fn every_change_leaves_a_record_naming_actor_seqs_and_resource_ids_but_no_payload() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.forbidden(1_010, "may read 00038166 only");
    let exported = f.export(ExportRange { include_unsealed: true, ..ALL });
    let records = records(&exported);
    let actions: Vec<_> = records.iter().map(|r| r.action).collect();
    use AuditAction::*;
    assert_eq!(actions, vec![Append, StreamOpen, StreamRead, StreamRepeat, StreamClose, Forbidden]);
    assert_eq!((records[0].actor.as_str(), records[0].seqs.clone()), ("token:producer", vec![1, 2, 3]));
    assert_eq!(records[0].resource_ids, vec!["R1000-0", "R1000-1", "R1000-2"]);
    assert_eq!(
        (records[1].seqs.clone(), records[1].resource_ids.clone()),
        (vec![1, 2], vec!["R1000-0".into(), "R1000-1".into()])
    );
    assert_eq!((records[2].confirmed.clone(), records[2].seqs.clone()), (vec![1, 2], vec![3]));
    assert_eq!(records[3].seqs, vec![3], "the retry repeats the outstanding batch");
    assert_eq!(records[4].confirmed, vec![3]);
    assert_eq!(records[5].outcome, "may read 00038166 only");
    assert!(records.iter().all(|r| r.chain == f.ispb));
    assert_eq!(records[1].request_id, "req-client:psp-a");
    let text = serde_json::to_string(&exported).expect("json");
    assert!(!text.contains("secret payload"), "payload never enters the audit log");
    let refused =
        Command::OpenStream { ispb: f.ispb, now_ms: 1_020, max_batch: 2, auto_create: None, origin: origin("x") };
    for _ in 0..7 {
        f.apply(refused.clone());
    }
    let last = f.record(f.machine.tenant(&f.ispb).expect("tenant").audit.newest().expect("records"));
    assert!(last.outcome.starts_with("refused: TooManyStreams"), "{}", last.outcome);
}

#[test]
fn a_sealed_export_verifies_clean_and_an_unsealed_tail_is_reported() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    f.session(2_000);
    f.seal(2_100);
    let report = f.verify();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!((report.records_checked, report.checkpoints_checked), (10, 2));

    f.session(3_000);
    let sealed_only = f.verify();
    assert!(sealed_only.is_clean() && sealed_only.records_checked == 10, "exports stop at the last checkpoint");
    let all = verify_entries(&f.export(ExportRange { include_unsealed: true, ..ALL }), &f.keys());
    assert_eq!(all.findings, vec![Finding::UnsealedTail { chain: f.ispb, from_seq: 11, to_seq: 15 }]);

    let wrong = HashMap::from([("a1".to_owned(), SigningKey::from_bytes(&[9; 32]).verifying_key())]);
    let forged = verify_entries(&f.export(ALL), &wrong);
    assert!(forged.findings.iter().any(|x| matches!(x, Finding::BadSignature { upto: 10, .. })), "{forged:?}");
    let unknown = verify_entries(&f.export(ALL), &HashMap::new());
    assert!(unknown.findings.iter().any(|x| matches!(x, Finding::UnknownKey { .. })));
}

#[test]
fn a_time_range_export_runs_on_to_the_next_checkpoint() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    f.session(200_000);
    f.seal(200_100);
    f.session(400_000);
    f.seal(400_100);
    let middle = f.export(ExportRange { from_ms: 150_000, to_ms: 200_001, include_unsealed: false });
    let seqs: Vec<u64> = records(&middle).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (6..=10).collect::<Vec<_>>(), "from the range start to the checkpoint after it");
    let report = verify_entries(&middle, &f.keys());
    assert!(report.is_clean(), "anchored by the checkpoint before: {:?}", report.findings);
}

#[test]
fn a_changed_record_is_found() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    let mut record = f.record(2);
    record.seqs = vec![9];
    f.put_raw(2, &record);
    let report = f.verify();
    let expected = record.hash;
    assert_eq!(
        report.first_broken(),
        Some(&Finding::AlteredRecord { chain: f.ispb, seq: 2, expected, actual: record.computed_hash() })
    );

    // Rehashing the changed record breaks the next link instead.
    record.hash = record.computed_hash();
    f.put_raw(2, &record);
    let report = f.verify();
    let Some(Finding::BrokenLink { seq: 3, after: 2, expected: e, actual: a, .. }) = report.first_broken() else {
        panic!("{:?}", report.findings)
    };
    assert_eq!((*e, *a), (record.hash, expected));
}

#[test]
fn a_removed_record_is_found() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    let removed = f.record(3);
    f.delete_raw(3);
    let report = f.verify();
    let after = f.record(2).hash;
    assert_eq!(
        report.first_broken(),
        Some(&Finding::BrokenLink { chain: f.ispb, seq: 4, after: 2, expected: after, actual: removed.hash })
    );
}

#[test]
fn an_inserted_record_is_found() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    // Shift records 3.. up by one and put a forged record, well formed and hashed, at 3.
    for seq in (3..=5).rev() {
        let mut moved = f.record(seq);
        moved.seq += 1;
        f.put_raw(seq + 1, &moved);
    }
    let mut forged = f.record(2);
    forged.seq = 3;
    forged.prev = forged.hash;
    forged.actor = "client:intruder".into();
    forged.hash = forged.computed_hash();
    f.put_raw(3, &forged);
    let report = f.verify();
    assert!(
        matches!(report.first_broken(), Some(Finding::AlteredRecord { seq: 4, .. })),
        "the renumbered record no longer matches its hash: {:?}",
        report.findings
    );
    assert!(report.findings.iter().any(|x| matches!(x, Finding::BrokenLink { seq: 4, after: 3, .. })));
}

#[test]
fn reordered_records_are_found() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    let (two, three) = (f.record(2), f.record(3));
    f.put_raw(2, &three);
    f.put_raw(3, &two);
    let report = f.verify();
    assert!(
        matches!(report.first_broken(), Some(Finding::BrokenLink { seq: 3, after: 1, .. })),
        "{:?}",
        report.findings
    );
}

#[test]
fn a_log_cut_short_of_its_checkpoint_is_found() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    f.delete_raw(5);
    f.delete_raw(4);
    let report = f.verify();
    assert_eq!(
        report.findings,
        vec![
            Finding::Truncated { chain: f.ispb, last_seq: 3, checkpoint_upto: 5 },
            Finding::UnsealedTail { chain: f.ispb, from_seq: 1, to_seq: 3 },
        ],
        "what is left is no longer covered by the checkpoint"
    );
}

#[test]
fn retention_removes_old_records_and_what_remains_still_verifies() {
    let mut f = Fixture::new();
    f.session(1_000);
    f.seal(1_100);
    f.session(5_000);
    f.seal(5_100);
    assert_eq!(f.apply(Command::AuditPurge { ispb: f.ispb, before_ms: 4_000 }), CommandResult::Audited(true));
    assert_eq!(f.machine.tenant(&f.ispb).expect("tenant").audit.first, 6);
    assert!(f.store.get(columns::AUDIT, &record_key(&f.ispb, 5)).expect("read").is_none());
    let report = f.verify();
    assert!(report.is_clean(), "anchored by the checkpoint of the last purged record: {:?}", report.findings);
    assert_eq!(report.records_checked, 5);
    assert_eq!(f.apply(Command::AuditPurge { ispb: f.ispb, before_ms: 4_000 }), CommandResult::Audited(false));
    f.session(6_000);
    assert_eq!(f.record(11).prev, f.record(10).hash, "the chain goes on after a purge");
}

#[test]
fn a_checkpoint_must_seal_a_real_record_with_its_hash() {
    let mut f = Fixture::new();
    f.session(1_000);
    let bad = Checkpoint::sign(f.ispb, 3, f.record(2).hash, 1_100, "a1", &f.key);
    assert_eq!(f.apply(Command::AuditSeal { checkpoint: bad }), CommandResult::Audited(false));
    let beyond = Checkpoint::sign(f.ispb, 99, f.record(5).hash, 1_100, "a1", &f.key);
    assert_eq!(f.apply(Command::AuditSeal { checkpoint: beyond }), CommandResult::Audited(false));
    f.seal(1_200);
    let again = Checkpoint::sign(f.ispb, 5, f.record(5).hash, 1_300, "a1", &f.key);
    assert_eq!(f.apply(Command::AuditSeal { checkpoint: again }), CommandResult::Audited(false), "once per record");
}

#[test]
fn with_audit_off_only_access_events_are_recorded() {
    let mut f = Fixture::new();
    f.machine = ShardMachine::load(f.store.clone(), 0, 1).expect("load").with_audit(false);
    f.session(1_000);
    f.forbidden(1_010, "not its ISPB");
    let exported = f.export(ExportRange { include_unsealed: true, ..ALL });
    let actions: Vec<AuditAction> = records(&exported).iter().map(|r| r.action).collect();
    assert_eq!(actions, vec![AuditAction::Forbidden]);
}
