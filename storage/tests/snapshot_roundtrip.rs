//! A shard snapshot taken from one store and installed into another reproduces the
//! shard's tenants, streams, dedupe records and messages exactly, and replaces
//! whatever the receiving store held for those ISPBs. Messages and audit records
//! travel as ranges: the receiver fetches the part it lacks before installing.

use bytes::Bytes;
use rocksdb::WriteBatch;
use storage::audit::ExportRange;
use storage::snapshot::{self, RecordRange, RecordSet, export_shard, read_ranges};
use storage::{Command, CommandResult, Ispb, NewMessage, ShardMachine, Store, StoreOptions, TenantSettings};

fn open(dir: &tempfile::TempDir) -> (Store, ShardMachine) {
    let store = Store::open(dir.path(), StoreOptions { fsync: false, ..StoreOptions::default() }).expect("open");
    let machine = ShardMachine::load(store.clone(), 0, 1).expect("load");
    (store, machine)
}

fn apply(store: &Store, machine: &mut ShardMachine, command: Command) -> CommandResult {
    let mut batch = WriteBatch::default();
    let result = machine.apply(vec![command], &mut batch).expect("apply").remove(0);
    store.write_durable(batch).expect("write");
    result
}

fn append(ispb: Ispb, count: usize, tag: &str) -> Command {
    let messages = (0..count)
        .map(|i| NewMessage {
            resource_id: format!("{tag}-{i}"),
            dedupe_key: format!("{tag}-{i}"),
            msg_type: "pacs.002.spi.1.15".into(),
            body: Bytes::from(format!("<Envelope>{tag}{i}</Envelope>")),
        })
        .collect();
    Command::Append {
        ispb,
        now_ms: 5,
        auto_create: Some(TenantSettings::default()),
        dedupe_window_ms: 1_000,
        messages,
        origin: Default::default(),
    }
}

/// Applies `command` to the source and to the replica alike (both then hold the
/// same prefix of the shard's history).
fn apply_to_both(source: (&Store, &mut ShardMachine), replica: (&Store, &mut ShardMachine), command: Command) {
    apply(source.0, source.1, command.clone());
    apply(replica.0, replica.1, command);
}

/// Fetches what `target` lacks of `file`'s ranges from `source`, page by page (as
/// a replica does from its peers), and returns those parts.
fn fetch_missing(source: &Store, target: &Store, file: &[u8], page_bytes: usize) -> Vec<RecordRange> {
    let ranges = read_ranges(&mut &file[..]).expect("ranges");
    let mut wanted = Vec::new();
    for range in &ranges {
        wanted.extend(snapshot::missing(target, range).expect("missing"));
    }
    for part in &wanted {
        let mut next = Some(part.first);
        while let Some(first) = next {
            let page_range = RecordRange { first, ..*part };
            let page = snapshot::read_page(source, &page_range, page_bytes).expect("page");
            snapshot::write_page(target, &page_range, &page).expect("write page");
            next = page.next;
        }
    }
    wanted
}

fn install(store: &Store, machine: &mut ShardMachine, file: &[u8]) {
    let ranges = read_ranges(&mut &file[..]).expect("ranges");
    let mut batch = WriteBatch::default();
    machine.install_snapshot(&mut &file[..], &ranges, &mut batch).expect("install");
    store.write_durable(batch).expect("write");
    machine.reload().expect("reload");
}

#[test]
fn a_snapshot_reproduces_the_shard_and_replaces_stale_state() {
    let a = Ispb::parse("32074986").expect("valid");
    let b = Ispb::parse("99999A03").expect("valid");
    let source_dir = tempfile::tempdir().expect("dir");
    let (source, mut machine) = open(&source_dir);
    apply(&source, &mut machine, append(a, 5, "a"));
    apply(&source, &mut machine, append(b, 3, "b"));
    let opened = apply(
        &source,
        &mut machine,
        Command::OpenStream { ispb: a, now_ms: 9, max_batch: 2, auto_create: None, origin: Default::default() },
    );
    assert!(matches!(opened, CommandResult::Handout(ref h) if h.seqs == vec![1, 2]));

    let mut file = Vec::new();
    let ispbs: Vec<Ispb> = machine.tenants().map(|t| t.ispb).collect();
    let mut taken = false;
    let count = export_shard(&source, &ispbs, || taken = true, &mut file).expect("export");
    assert!(taken);
    assert_eq!(count.records, 2 + 1 + 8, "tenants, stream, dedupe records are copied");
    assert_eq!(count.ranges, 2 + 2, "messages and audit records of each ISPB are ranges");

    // The receiver holds an ISPB the snapshot does not know, and records beyond
    // what the snapshot names (fetched for an install that never finished).
    let target_dir = tempfile::tempdir().expect("dir");
    let (target, mut replica) = open(&target_dir);
    let stray = Ispb::parse("12345678").expect("valid");
    apply(&target, &mut replica, append(stray, 2, "stray"));
    let beyond = RecordRange { set: RecordSet::Messages, ispb: a, first: 6, last: 7 };
    let mut leftover =
        snapshot::read_page(&target, &RecordRange { ispb: stray, first: 1, last: 2, ..beyond }, 1 << 20).expect("page");
    for (n, record) in leftover.records.iter_mut().enumerate() {
        record.0 = 6 + n as u64;
    }
    snapshot::write_page(&target, &beyond, &leftover).expect("write page");
    let fetched = fetch_missing(&source, &target, &file, 64);
    assert_eq!(fetched.iter().map(RecordRange::len).sum::<u64>(), 8 + 3, "every message and audit record is fetched");
    install(&target, &mut replica, &file);

    let everything = ExportRange { from_ms: 0, to_ms: u64::MAX, include_unsealed: true };
    for ispb in [a, b] {
        assert_eq!(replica.tenant(&ispb), machine.tenant(&ispb));
        let head = &machine.tenant(&ispb).expect("tenant").audit;
        let chain = source.audit_export(&ispb, head, everything).expect("export");
        assert_eq!(target.audit_export(&ispb, head, everything).expect("export"), chain, "the audit chain is copied");
    }
    let seqs: Vec<u64> = (1..=9).collect();
    let copied = target.read_messages(&a, &seqs).expect("read");
    assert_eq!(copied, source.read_messages(&a, &seqs).expect("read"));
    assert_eq!(copied.len(), 5, "the records beyond the snapshot's range are gone");
    assert_eq!(copied[0].resource_id, "a-0");
    assert!(replica.record(&stray).is_none(), "an ISPB the snapshot does not hold is gone");
    assert!(target.read_messages(&stray, &[1, 2]).expect("read").is_empty());
}

#[test]
fn a_replica_holding_a_prefix_fetches_only_the_rest_and_the_file_does_not_grow_with_messages() {
    let a = Ispb::parse("32074986").expect("valid");
    let (source_dir, replica_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (source, mut machine) = open(&source_dir);
    let (target, mut replica) = open(&replica_dir);
    // Both applied the first 300 appends; only the source applied the next 20.
    for n in 0..30 {
        apply_to_both((&source, &mut machine), (&target, &mut replica), append(a, 10, &format!("p{n}")));
    }
    let small = {
        let mut file = Vec::new();
        export_shard(&source, &[a], || {}, &mut file).expect("export");
        file.len()
    };
    apply(&source, &mut machine, append(a, 20, "tail"));
    let mut file = Vec::new();
    export_shard(&source, &[a], || {}, &mut file).expect("export");
    let grown = file.len() - small;
    assert!(grown < 20 * 200, "20 more messages grow the file by their dedupe keys only: {grown} bytes");

    let fetched = fetch_missing(&source, &target, &file, 1 << 20);
    let messages: Vec<&RecordRange> = fetched.iter().filter(|r| r.set == RecordSet::Messages).collect();
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].first, messages[0].last), (301, 320), "only the messages the replica lacks");
    let audit: Vec<&RecordRange> = fetched.iter().filter(|r| r.set == RecordSet::AuditRecords).collect();
    assert_eq!(audit.iter().map(|r| r.len()).sum::<u64>(), 1, "and the one audit record it lacks");
    install(&target, &mut replica, &file);
    assert_eq!(replica.tenant(&a), machine.tenant(&a));
    let seqs: Vec<u64> = (1..=320).collect();
    assert_eq!(target.read_messages(&a, &seqs).expect("read"), source.read_messages(&a, &seqs).expect("read"));
}

#[test]
fn purged_messages_are_outside_the_range_and_deleted_on_install() {
    let a = Ispb::parse("32074986").expect("valid");
    let (source_dir, replica_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (source, mut machine) = open(&source_dir);
    let (target, mut replica) = open(&replica_dir);
    let opened =
        Command::OpenStream { ispb: a, now_ms: 9, max_batch: 10, auto_create: None, origin: Default::default() };
    for command in [append(a, 10, "m"), opened] {
        apply_to_both((&source, &mut machine), (&target, &mut replica), command);
    }
    // The source confirms the batch and purges it; the replica has not applied either.
    let (stream, generation) = {
        let tenant = machine.tenant(&a).expect("tenant");
        let open = tenant.streams.values().next().expect("a stream is open");
        (open.id, open.generation)
    };
    let next = Command::Pull { ispb: a, stream, generation, max_batch: 10, now_ms: 10, origin: Default::default() };
    apply(&source, &mut machine, next);
    let purge = Command::PurgeRetained { ispb: a, below: 11, now_ms: 8 * 24 * 3_600_000 };
    assert!(!matches!(apply(&source, &mut machine, purge), CommandResult::Rejected(_)));
    let mut file = Vec::new();
    export_shard(&source, &[a], || {}, &mut file).expect("export");
    let ranges = read_ranges(&mut &file[..]).expect("ranges");
    assert!(!ranges.iter().any(|r| r.set == RecordSet::Messages), "no message is retained: {ranges:?}");
    install(&target, &mut replica, &file);
    assert!(target.read_messages(&a, &(1..=10).collect::<Vec<_>>()).expect("read").is_empty());
    assert_eq!(replica.tenant(&a), machine.tenant(&a));
}

#[test]
fn a_truncated_snapshot_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, mut machine) = open(&dir);
    apply(&store, &mut machine, append(Ispb::parse("32074986").expect("valid"), 2, "x"));
    let ispbs: Vec<Ispb> = machine.tenants().map(|t| t.ispb).collect();
    let mut file = Vec::new();
    export_shard(&store, &ispbs, || {}, &mut file).expect("export");
    file.truncate(file.len() - 3);
    let mut batch = WriteBatch::default();
    assert!(read_ranges(&mut file.as_slice()).is_err());
    assert!(machine.install_snapshot(&mut file.as_slice(), &[], &mut batch).is_err());
}

#[test]
fn snapshots_name_ranges_and_the_earlier_record_formats_still_install() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, mut machine) = open(&dir);
    let ispb = Ispb::parse("32074986").expect("valid");
    apply(&store, &mut machine, append(ispb, 20, "x"));
    let mut file = Vec::new();
    export_shard(&store, &[ispb], || {}, &mut file).expect("export");
    assert_eq!(&file[..8], b"PIXSNAP3");
    let ranges = read_ranges(&mut file.as_slice()).expect("ranges");
    assert_eq!(ranges.len(), 2, "messages and audit records: {ranges:?}");

    // The same state as records only, under the earlier formats' magics: messages
    // and audit records as records, uncompressed (PIXSNAP1) and deflated (PIXSNAP2).
    let mut raw = Vec::new();
    for (index, name) in storage::columns::STATE.iter().enumerate() {
        let cf = store.cf(name).expect("cf");
        for item in store.db().prefix_iterator_cf(cf, ispb.as_bytes()) {
            let (key, value) = item.expect("read");
            if !key.starts_with(ispb.as_bytes()) {
                break;
            }
            raw.push(index as u8);
            for field in [&key, &value] {
                raw.extend_from_slice(&(field.len() as u32).to_be_bytes());
                raw.extend_from_slice(field);
            }
        }
    }
    raw.push(0xFF);
    let mut deflated = flate2::write::DeflateEncoder::new(b"PIXSNAP2".to_vec(), flate2::Compression::fast());
    std::io::Write::write_all(&mut deflated, &raw).expect("deflate");
    let old_compressed = deflated.finish().expect("deflate");
    let old_raw = [b"PIXSNAP1".as_slice(), &raw].concat();
    for old in [old_raw, old_compressed] {
        assert!(read_ranges(&mut old.as_slice()).expect("an old file reads").is_empty());
        let other = tempfile::tempdir().expect("dir");
        let (other_store, mut other_machine) = open(&other);
        install(&other_store, &mut other_machine, &old);
        assert_eq!(other_machine.tenant(&ispb).map(|t| t.next_seq), Some(21));
        let seqs: Vec<u64> = (1..=20).collect();
        assert_eq!(
            other_store.read_messages(&ispb, &seqs).expect("read"),
            store.read_messages(&ispb, &seqs).expect("read")
        );
    }
}
