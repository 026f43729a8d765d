//! A hand-out carries its messages, read once when the command applies: the
//! messages appended earlier in the same apply come from memory, stored ones from
//! one read that also gives the audit record its resource ids — so a delivered
//! message is read from RocksDB once, not once for the audit and once for the answer.

use bytes::Bytes;
use rocksdb::WriteBatch;
use storage::audit::{AuditEntry, ExportRange, Origin};
use storage::{Command, CommandResult, Handout, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings};

fn ispb() -> Ispb {
    Ispb::parse("32074986").expect("valid")
}

fn append(keys: &[&str]) -> Command {
    Command::Append {
        ispb: ispb(),
        now_ms: 1_000,
        auto_create: Some(TenantSettings::default()),
        dedupe_window_ms: 1_000_000,
        messages: keys
            .iter()
            .map(|key| NewMessage {
                resource_id: format!("R{key}"),
                dedupe_key: (*key).to_owned(),
                msg_type: "pacs.008.spi.1.14".into(),
                body: Bytes::from(format!("<Envelope>{key}</Envelope>")),
            })
            .collect(),
        origin: Origin::system("test"),
    }
}

fn open(max_batch: u32) -> Command {
    Command::OpenStream { ispb: ispb(), now_ms: 2_000, max_batch, auto_create: None, origin: Origin::default() }
}

fn apply(store: &Store, machine: &mut ShardMachine, commands: Vec<Command>) -> Vec<CommandResult> {
    let mut batch = WriteBatch::default();
    let results = machine.apply(commands, &mut batch).expect("apply");
    store.write_durable(batch).expect("write");
    results
}

fn handout(result: &CommandResult) -> &Handout {
    let CommandResult::Handout(handout) = result else { panic!("a hand-out: {result:?}") };
    handout
}

#[test]
fn a_handout_carries_its_messages_read_once() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), StoreOptions { fsync: false, ..StoreOptions::default() }).expect("open");
    let mut machine = ShardMachine::load(store.clone(), 0, 1).expect("load");

    // Appended and handed out in one apply: nothing is on disk yet, nothing is read.
    let results = apply(&store, &mut machine, vec![append(&["a", "b"]), open(10)]);
    let first = handout(&results[1]);
    assert_eq!(first.seqs, vec![1, 2]);
    let ids: Vec<_> = first.messages.iter().map(|m| (m.seq, m.resource_id.as_str(), m.body.clone())).collect();
    assert_eq!(
        ids,
        vec![(1, "Ra", Bytes::from("<Envelope>a</Envelope>")), (2, "Rb", Bytes::from("<Envelope>b</Envelope>"))]
    );
    assert_eq!(store.counts().message_reads, 0, "taken from the apply, not read back");

    // Stored earlier: one read per handed-out message, the audit record included.
    apply(&store, &mut machine, vec![append(&["c", "d", "e"])]);
    let reads = store.counts().message_reads;
    let pull = Command::Pull {
        ispb: ispb(),
        stream: first.stream,
        generation: first.generation,
        max_batch: 10,
        now_ms: 3_000,
        origin: Origin::default(),
    };
    let results = apply(&store, &mut machine, vec![pull]);
    let next = handout(&results[0]);
    assert_eq!(next.seqs, vec![3, 4, 5]);
    assert_eq!(next.messages.iter().map(|m| m.resource_id.as_str()).collect::<Vec<_>>(), ["Rc", "Rd", "Re"]);
    assert_eq!(store.counts().message_reads - reads, 3, "each message read once");
    let all = ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: true };
    let head = &machine.tenant(&ispb()).expect("tenant").audit;
    let exported = store.audit_export(&ispb(), head, all).expect("audit export");
    let Some(AuditEntry::Record(last)) = exported.last() else { panic!("the hand-out's record: {exported:?}") };
    assert_eq!(last.resource_ids, ["Rc", "Rd", "Re"], "the audit record names the ids read");
}
