//! `PeerNetwork`: the seam through which a shard group talks to its replicas on
//! other nodes.
//!
//! Today every group has exactly one member (this node), so no RPC is ever needed:
//! every connection answers `Unreachable` with "peer network not configured". The
//! real transport (HTTP on the peer listener, with request forwarding to leaders)
//! comes with the multi-node cluster work and replaces this file's bodies only.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};

use crate::error::Error;
use crate::types::{PeerNode, TypeConfig};

/// Creates connections to peers; cheap to clone.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerNetwork;

/// A connection to one peer that cannot send anything yet.
#[derive(Debug)]
pub struct PeerConnection {
    target: u64,
}

impl PeerConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<u64, PeerNode, E> {
        let error = Error::Unavailable(format!("peer network not configured (target node {})", self.target));
        RPCError::Unreachable(Unreachable::new(&error))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerConnection {
        tracing::debug!(target, %node, "peer connection requested but the peer network is not configured");
        PeerConnection { target }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, PeerNode, RaftError<u64>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, PeerNode, RaftError<u64, InstallSnapshotError>>> {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, PeerNode, RaftError<u64>>> {
        Err(self.unreachable())
    }
}
