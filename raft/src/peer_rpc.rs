//! The receiving side of the peer transport: `Shards::handle_peer_rpc` decodes a
//! Raft RPC addressed to one of this node's shard groups, hands it to the group and
//! encodes the group's answer (see `wire` for the format). It knows no HTTP: the
//! server's peer listener maps `Ok` to 200 with the bytes, `BadRequest` to 400,
//! `NotMember` to 404 (the sender's membership is wrong or this node moved).

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};

use crate::error::Error;
use crate::peer_wire::{self, RpcKind};
use crate::record_fetch::RecordsRequest;
use crate::shards::Shards;
use crate::types::TypeConfig;

impl Shards {
    /// Handles one Raft RPC for `shard`: `kind` is `append`, `vote`, `snapshot` or `records`,
    /// `body` the bincode request. Returns the bincode of the group's `Result`; an
    /// error raised by Raft travels inside it and is not an `Err` here.
    pub async fn handle_peer_rpc(&self, shard: u32, kind: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
        let Some(kind) = RpcKind::parse(kind) else {
            return Err(Error::BadRequest(format!("unknown raft rpc {kind:?}")));
        };
        if shard >= self.shard_count() {
            return Err(Error::BadRequest(format!("shard {shard} does not exist ({} shards)", self.shard_count())));
        }
        let Some(raft) = self.raft(shard) else {
            tracing::debug!(shard, %kind, "raft rpc for a shard this node does not replicate");
            return Err(Error::NotMember { shard });
        };
        let bad = |e: Error| Error::BadRequest(format!("{kind} body for shard {shard}: {e}"));
        tracing::trace!(shard, %kind, bytes = body.len(), "raft rpc received");
        let answer = match kind {
            RpcKind::Append => {
                let request: AppendEntriesRequest<TypeConfig> = peer_wire::decode(body).map_err(bad)?;
                peer_wire::encode(&raft.append_entries(request).await)
            }
            RpcKind::Vote => {
                let request: VoteRequest<u64> = peer_wire::decode(body).map_err(bad)?;
                peer_wire::encode(&raft.vote(request).await)
            }
            RpcKind::Snapshot => {
                let request: InstallSnapshotRequest<TypeConfig> = peer_wire::decode(body).map_err(bad)?;
                peer_wire::encode(&raft.install_snapshot(request).await)
            }
            RpcKind::Records => {
                let request: RecordsRequest = peer_wire::decode(body).map_err(bad)?;
                peer_wire::encode(&self.records_answer(shard, request).await?)
            }
        };
        Ok(answer)
    }
}
