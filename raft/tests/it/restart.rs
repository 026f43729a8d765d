//! A node that stops and starts again on the same directory resumes its shards: no
//! re-initialization, the state is back, and new proposals work.

use std::sync::Arc;

use storage::{AppendOutcome, Command, CommandResult};
use tempfile::TempDir;

use crate::{append, config, ispb, open_store, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_state_and_accepts_new_proposals() {
    let dir = TempDir::new().expect("temp dir");
    let target = ispb("32074986");
    let stream = {
        let store = open_store(dir.path()).await;
        let shards = start(store, config(dir.path(), 4), Arc::new(raft::NoopObserver)).await;
        for n in 1..=5 {
            shards.propose(append(target, &format!("k{n}"))).await.expect("append commits");
        }
        let open = Command::OpenStream {
            ispb: target,
            now_ms: 2_000,
            max_batch: 3,
            auto_create: None,
            origin: Default::default(),
        };
        let CommandResult::Handout(handout) = shards.propose(open).await.expect("open commits") else {
            panic!("open stream hands out");
        };
        assert_eq!(handout.seqs, vec![1, 2, 3]);
        shards.shutdown().await;
        handout.stream
    };

    let store = open_store(dir.path()).await;
    let shards = start(store, config(dir.path(), 4), Arc::new(raft::NoopObserver)).await;
    assert!((0..4).all(|s| shards.is_leader(s)), "the one-member groups lead again");
    let (next_seq, open_streams, batch) = shards
        .read(&target, |m| {
            let tenant = m.tenant(&target).expect("tenant survived the restart");
            (tenant.next_seq, tenant.open_streams(), tenant.streams.get(&stream).map(|s| s.batch.clone()))
        })
        .expect("the one node replicates every shard");
    assert_eq!((next_seq, open_streams, batch), (6, 1, Some(vec![1, 2, 3])));

    let appended = shards.propose(append(target, "k6")).await.expect("append after restart");
    assert_eq!(
        appended,
        CommandResult::Appended(vec![AppendOutcome { seq: 6, resource_id: "Rk6".into(), duplicate: false }])
    );
    let repeat = shards.propose(append(target, "k2")).await.expect("repeat after restart");
    assert_eq!(
        repeat,
        CommandResult::Appended(vec![AppendOutcome { seq: 2, resource_id: "Rk2".into(), duplicate: true }])
    );
    let pull =
        Command::Pull { ispb: target, stream, generation: 1, max_batch: 10, now_ms: 3_000, origin: Default::default() };
    let CommandResult::Handout(next) = shards.propose(pull).await.expect("pull after restart") else {
        panic!("pull hands out");
    };
    assert_eq!((next.generation, next.seqs), (2, vec![4, 5, 6]));
    shards.shutdown().await;
}
