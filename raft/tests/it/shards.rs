//! `Shards` end to end on one node with 4 shards: appends, streams, pulls, wakes,
//! and group commit under concurrency.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use storage::{AppendOutcome, Command, CommandResult, Handout};
use tempfile::TempDir;

use crate::{RecordingObserver, append, config, ispb, open_store, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_streams_and_pulls_are_applied_in_their_shards() {
    let dir = TempDir::new().expect("temp dir");
    let store = open_store(dir.path()).await;
    let observer = Arc::new(RecordingObserver::default());
    let shards = start(store.clone(), config(dir.path(), 4), observer.clone()).await;
    assert_eq!(shards.shard_count(), 4);
    assert!((0..4).all(|s| shards.is_leader(s)));

    let ispbs = [ispb("00000001"), ispb("32074986"), ispb("99999A03"), ispb("60746948")];
    let used: BTreeSet<u32> = ispbs.iter().map(|i| shards.shard_for(i)).collect();
    assert!(used.len() > 1, "the test ISPBs spread over several shards");

    for ispb in ispbs {
        for n in 1..=3u64 {
            let result = shards.propose(append(ispb, &format!("{ispb}-{n}"))).await.expect("append commits");
            let expected = vec![AppendOutcome { seq: n, resource_id: format!("R{ispb}-{n}"), duplicate: false }];
            assert_eq!(result, CommandResult::Appended(expected));
        }
        // A repeat of a dedupe key gets the original seq back.
        let repeat = shards.propose(append(ispb, &format!("{ispb}-2"))).await.expect("repeat commits");
        assert_eq!(
            repeat,
            CommandResult::Appended(vec![AppendOutcome { seq: 2, resource_id: format!("R{ispb}-2"), duplicate: true }])
        );
    }
    assert_eq!(*observer.woken.lock(), BTreeSet::from(ispbs), "every appended ISPB was woken");
    assert!(observer.reasons.lock().values().all(|why| *why == storage::Wake::Available), "for one reader each");

    let target = ispbs[1];
    let open = Command::OpenStream {
        ispb: target,
        now_ms: 2_000,
        max_batch: 10,
        auto_create: None,
        origin: Default::default(),
    };
    let CommandResult::Handout(Handout { stream, generation, seqs, .. }) =
        shards.propose(open).await.expect("open commits")
    else {
        panic!("open stream hands out");
    };
    assert_eq!((generation, seqs), (1, vec![1, 2, 3]));
    let messages = store.read_messages(&target, &[1, 2, 3]).expect("messages stored");
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2].body.as_ref(), format!("<Document><Id>{target}-3</Id></Document>").as_bytes());

    let pull =
        Command::Pull { ispb: target, stream, generation, max_batch: 10, now_ms: 3_000, origin: Default::default() };
    let CommandResult::Handout(next) = shards.propose(pull).await.expect("pull commits") else {
        panic!("pull hands out");
    };
    assert!(next.seqs.is_empty() && next.fresh);
    let (watermark, backlog) = shards
        .read(&target, |m| {
            let tenant = m.tenant(&target).expect("tenant exists");
            (tenant.watermark, tenant.backlog())
        })
        .expect("the one node replicates every shard");
    assert_eq!((watermark, backlog), (4, 0), "the pull confirmed the batch");

    let closed = Command::CloseStream { ispb: target, stream, generation, now_ms: 0, origin: Default::default() };
    assert_eq!(
        shards.propose(closed).await.expect("close commits"),
        CommandResult::Closed { confirmed: 0, redelivered: 0, open_streams: 0, max_streams: 6 }
    );

    let metrics = shards.metrics(shards.shard_for(&target)).expect("hosted");
    assert_eq!(metrics.current_leader, Some(1));
    shards.shutdown().await;
    assert!(matches!(shards.propose(append(target, "late")).await, Err(raft::Error::Unavailable(_))));
}

fn last_index(shards: &raft::Shards, shard: u32) -> u64 {
    shards.metrics(shard).and_then(|m| m.last_log_index).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_each_get_their_own_result() {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    let dir = TempDir::new().expect("temp dir");
    let store = open_store(dir.path()).await;
    let shards = start(store.clone(), config(dir.path(), 4), Arc::new(raft::NoopObserver)).await;
    let ispbs =
        [ispb("00000001"), ispb("32074986"), ispb("99999A03"), ispb("60746948"), ispb("11111111"), ispb("ABCDEF12")];
    let log_before: u64 = (0..4).map(|s| last_index(&shards, s)).sum();

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let shards = shards.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(PER_TASK);
            for n in 0..PER_TASK {
                let target = ispbs[(t + n) % ispbs.len()];
                let key = format!("t{t}-n{n}");
                let result = shards.propose(append(target, &key)).await.expect("append commits");
                let CommandResult::Appended(outcomes) = result else {
                    panic!("an append yields Appended, got {result:?}");
                };
                assert_eq!(outcomes.len(), 1);
                assert_eq!(outcomes[0].resource_id, format!("R{key}"), "the caller got its own result");
                got.push((target, outcomes[0].seq, key));
            }
            got
        }));
    }
    let mut by_ispb: BTreeMap<_, Vec<(u64, String)>> = BTreeMap::new();
    for task in tasks {
        for (target, seq, key) in task.await.expect("task finished") {
            by_ispb.entry(target).or_default().push((seq, key));
        }
    }
    let total: usize = by_ispb.values().map(Vec::len).sum();
    assert_eq!(total, TASKS * PER_TASK);
    for (target, mut got) in by_ispb {
        got.sort();
        let seqs: Vec<u64> = got.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<u64> = (1..=got.len() as u64).collect();
        assert_eq!(seqs, expected, "seqs of {target} are distinct and contiguous");
        // Each seq holds exactly the message its caller appended.
        let stored = store.read_messages(&target, &seqs).expect("messages stored");
        for ((_, key), message) in got.iter().zip(&stored) {
            assert_eq!(message.resource_id, format!("R{key}"));
        }
        let next_seq = shards.read(&target, |m| m.tenant(&target).map(|t| t.next_seq)).flatten();
        assert_eq!(next_seq, Some(got.len() as u64 + 1));
    }
    let log_after: u64 = (0..4).map(|s| last_index(&shards, s)).sum();
    let entries = log_after - log_before;
    assert!(
        entries < (TASKS * PER_TASK) as u64,
        "group commit merged proposals: {entries} entries for {} commands",
        TASKS * PER_TASK
    );
    shards.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_rpc_serves_applied_records_and_refuses_what_it_cannot_vouch_for() {
    use raft::peer_wire::{decode, encode};
    use raft::record_fetch::{RecordsAnswer, RecordsRequest};
    use storage::snapshot::{RecordRange, RecordSet};

    let dir = TempDir::new().expect("temp dir");
    let store = open_store(dir.path()).await;
    let shards = start(store, config(dir.path(), 2), Arc::new(raft::NoopObserver)).await;
    let target = ispb("32074986");
    let shard = shards.shard_for(&target);
    for n in 1..=3 {
        shards.propose(append(target, &format!("k{n}"))).await.expect("append commits");
    }
    let applied = shards.metrics(shard).and_then(|m| m.last_applied).map(|l| l.index).expect("applied");
    let range = RecordRange { set: RecordSet::Messages, ispb: target, first: 2, last: 9 };
    let ask = |at_least: u64| encode(&RecordsRequest { range, applied_at_least: at_least, max_bytes: 1 << 20 });

    let answer: RecordsAnswer =
        decode(&shards.handle_peer_rpc(shard, "records", &ask(applied)).await.expect("served")).expect("decodes");
    let RecordsAnswer::Page(page) = answer else { panic!("a page: {answer:?}") };
    assert_eq!(page.records.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![2, 3], "what the node holds");
    assert_eq!(page.next, None);

    let answer: RecordsAnswer =
        decode(&shards.handle_peer_rpc(shard, "records", &ask(applied + 50)).await.expect("served")).expect("decodes");
    assert_eq!(answer, RecordsAnswer::Behind { applied }, "a node behind the snapshot does not vouch for it");

    let other = (0..2).find(|s| *s != shard).expect("another shard");
    let wrong = shards.handle_peer_rpc(other, "records", &ask(0)).await;
    assert!(matches!(wrong, Err(raft::Error::BadRequest(_))), "an ISPB of another shard: {wrong:?}");
    let garbage = shards.handle_peer_rpc(shard, "records", &[1, 2, 3]).await;
    assert!(matches!(garbage, Err(raft::Error::BadRequest(_))), "{garbage:?}");
    shards.shutdown().await;
}
