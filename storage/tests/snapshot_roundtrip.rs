//! A shard snapshot taken from one store and installed into another reproduces the
//! shard's tenants, streams, dedupe records and messages exactly, and replaces
//! whatever the receiving store held for those ISPBs.

use bytes::Bytes;
use rocksdb::WriteBatch;
use storage::audit::ExportRange;
use storage::snapshot::export_shard;
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
    let records = export_shard(&source, &ispbs, || taken = true, &mut file).expect("export");
    assert!(taken);
    assert_eq!(records, 2 + 1 + 8 + 8 + 3, "tenants, stream, dedupe records, messages, audit records");

    // The receiver holds older, different state for A: it must be replaced.
    let target_dir = tempfile::tempdir().expect("dir");
    let (target, mut replica) = open(&target_dir);
    apply(&target, &mut replica, append(a, 9, "stale"));
    let mut batch = WriteBatch::default();
    replica.install_snapshot(&mut file.as_slice(), &mut batch).expect("install");
    target.write_durable(batch).expect("write");
    replica.reload().expect("reload");

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
    assert_eq!(copied.len(), 5, "the stale messages 6..9 are gone");
    assert_eq!(copied[0].resource_id, "a-0");
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
    assert!(machine.install_snapshot(&mut file.as_slice(), &mut batch).is_err());
}

#[test]
fn snapshots_are_compressed_and_the_uncompressed_format_still_installs() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, mut machine) = open(&dir);
    let ispb = Ispb::parse("32074986").expect("valid");
    apply(&store, &mut machine, append(ispb, 20, "x"));
    let mut file = Vec::new();
    export_shard(&store, &[ispb], || {}, &mut file).expect("export");
    assert_eq!(&file[..8], b"PIXSNAP2");

    // The same records, uncompressed, under the older magic.
    let mut raw = Vec::new();
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&file[8..]), &mut inflated).expect("inflate");
    raw.extend_from_slice(b"PIXSNAP1");
    raw.extend_from_slice(&inflated);
    assert!(file.len() < raw.len(), "compressed {} bytes, raw {}", file.len(), raw.len());

    let other = tempfile::tempdir().expect("dir");
    let (other_store, mut other_machine) = open(&other);
    let mut batch = WriteBatch::default();
    other_machine.install_snapshot(&mut raw.as_slice(), &mut batch).expect("an uncompressed snapshot installs");
    other_store.write_durable(batch).expect("write");
    other_machine.reload().expect("reload");
    assert_eq!(other_machine.tenant(&ispb).map(|t| t.next_seq), Some(21));
}
