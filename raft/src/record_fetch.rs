//! The records a received snapshot names but this replica lacks: fetched page by
//! page before the snapshot is installed, from a replica of the shard that has
//! applied at least as far as the snapshot (`RecordSource`), and served to other
//! replicas by `Shards::records_answer` (the `records` peer RPC).
//!
//! Why a replica that has applied that far can be asked: messages and audit records
//! never change once written, and the only thing that removes one is a later
//! command (a retention purge, a forced tenant delete). A record such a replica no
//! longer holds was removed by a command after the snapshot, which this replica
//! will apply too; every other record it holds. See `storage::snapshot::ranges`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use storage::Store;
use storage::snapshot::{RecordPage, RecordRange};

use crate::error::Error;
use crate::network::PeerTransport;
use crate::peer_wire::{self, RpcKind};
use crate::shards::Shards;
use crate::types::PeerNode;

/// Most value bytes one page carries.
pub const RECORD_PAGE_BYTES: u64 = 4 << 20;
/// How long a fetch goes on without a page arriving before the install fails.
const PATIENCE: Duration = Duration::from_secs(120);
/// Pause between rounds of asking every replica.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Timeout of one page request.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One page of `range`, asked of a replica that has applied at least
/// `applied_at_least` of the range's shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsRequest {
    pub range: RecordRange,
    pub applied_at_least: u64,
    pub max_bytes: u64,
}

/// The answer to a `RecordsRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordsAnswer {
    /// The records of the range this replica holds, from its start.
    Page(RecordPage),
    /// This replica has not applied as far as asked.
    Behind { applied: u64 },
}

/// A future a `RecordSource` returns.
pub type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<RecordPage, Error>> + Send + 'a>>;

/// Where a replica installing a snapshot gets the records it lacks.
pub trait RecordSource: Send + Sync + 'static {
    /// One page of `request`, for `shard`, whose members by the snapshot are `members`.
    fn page<'a>(
        &'a self,
        shard: u32,
        members: &'a BTreeMap<u64, PeerNode>,
        request: &'a RecordsRequest,
    ) -> PageFuture<'a>;
}

/// The other replicas of the shard, over the peer transport.
pub struct PeerRecords {
    node_id: u64,
    transport: PeerTransport,
}

impl PeerRecords {
    /// Asks the members other than `node_id` over `transport`.
    pub fn new(node_id: u64, transport: PeerTransport) -> PeerRecords {
        PeerRecords { node_id, transport }
    }
}

impl RecordSource for PeerRecords {
    fn page<'a>(
        &'a self,
        shard: u32,
        members: &'a BTreeMap<u64, PeerNode>,
        request: &'a RecordsRequest,
    ) -> PageFuture<'a> {
        Box::pin(async move {
            let mut refusals = Vec::new();
            for (id, node) in members.iter().filter(|(id, _)| **id != self.node_id) {
                let url = peer_wire::rpc_url(self.transport.scheme, &node.peer_addr, shard, RpcKind::Records);
                match self.transport.call::<_, RecordsAnswer>(&url, request, PAGE_TIMEOUT, "records request").await {
                    Ok(RecordsAnswer::Page(page)) => return Ok(page),
                    Ok(RecordsAnswer::Behind { applied }) => refusals.push(format!("node {id} applied only {applied}")),
                    Err(error) => refusals.push(format!("node {id}: {error}")),
                }
            }
            Err(Error::Unavailable(format!("no replica served the records: {}", refusals.join("; "))))
        })
    }
}

/// A store on this machine that has applied the shard at least as far as asked
/// (tools, and tests that install one store's snapshot into another).
impl RecordSource for Store {
    fn page<'a>(&'a self, _: u32, _: &'a BTreeMap<u64, PeerNode>, request: &'a RecordsRequest) -> PageFuture<'a> {
        Box::pin(async move { Ok(storage::snapshot::read_page(self, &request.range, request.max_bytes as usize)?) })
    }
}

/// What a fetch brought in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    pub records: u64,
    pub bytes: u64,
}

/// Fetches every range of `wanted` into `store`, page by page, retrying for as long
/// as pages keep arriving within `PATIENCE`.
pub(crate) async fn fetch_into(
    source: &dyn RecordSource,
    store: &Store,
    shard: u32,
    members: &BTreeMap<u64, PeerNode>,
    applied_at_least: u64,
    wanted: Vec<RecordRange>,
) -> Result<Fetched, Error> {
    let mut fetched = Fetched::default();
    for range in wanted {
        let mut next = Some(range.first);
        let mut progress = Instant::now();
        while let Some(first) = next {
            let part = RecordRange { first, ..range };
            let request = RecordsRequest { range: part, applied_at_least, max_bytes: RECORD_PAGE_BYTES };
            let page = match source.page(shard, members, &request).await {
                Ok(page) => page,
                Err(error) if progress.elapsed() < PATIENCE => {
                    tracing::debug!(shard, %error, "records not fetched yet; asking again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            progress = Instant::now();
            fetched.records += page.records.len() as u64;
            fetched.bytes += page.records.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
            next = page.next;
            let store = store.clone();
            tokio::task::spawn_blocking(move || storage::snapshot::write_page(&store, &part, &page))
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        }
    }
    Ok(fetched)
}

impl Shards {
    /// Answers a `records` peer RPC for `shard`: the page asked, when this node has
    /// applied the shard at least as far as the asker needs.
    pub(crate) async fn records_answer(&self, shard: u32, request: RecordsRequest) -> Result<RecordsAnswer, Error> {
        if storage::shard_of(&request.range.ispb, self.shard_count()) != shard {
            return Err(Error::BadRequest(format!("{} is not in shard {shard}", request.range.ispb)));
        }
        let raft = self.raft(shard).ok_or(Error::NotMember { shard })?;
        let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        if applied < request.applied_at_least {
            return Ok(RecordsAnswer::Behind { applied });
        }
        let store = self.store().clone();
        let max_bytes = request.max_bytes.min(RECORD_PAGE_BYTES) as usize;
        let page = tokio::task::spawn_blocking(move || storage::snapshot::read_page(&store, &request.range, max_bytes))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Ok(RecordsAnswer::Page(page))
    }
}
