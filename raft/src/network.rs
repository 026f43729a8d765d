//! `PeerNetwork`: how a shard group sends Raft RPCs to its replicas on other nodes.
//!
//! One `PeerNetwork` per shard group; all of a node's groups share one
//! `reqwest::Client` speaking HTTP/2 with prior knowledge, so every shard's traffic
//! to a peer is multiplexed over one TCP connection. The format is `wire`'s. Before
//! sending, the shared `NetworkFaults` is consulted (tests cut and slow links there).
//!
//! Errors, as openraft expects them: connect failures (refused, or no connection
//! within `CONNECT_TIMEOUT`) are `Unreachable`, and openraft backs off before the
//! next try; a non-200 answer or an undecodable body is `Network`; an error raised
//! by the remote Raft comes back decoded and becomes `RemoteError`. openraft bounds
//! every RPC by `RPCOption::hard_ttl()` itself and reports `Timeout` (no back-off:
//! a slow answer under load is not a dead peer), so the HTTP request timeout here,
//! a little longer, is only a safety net; if it ever fires it is `Unreachable`. An append of several entries whose body would
//! exceed `MAX_APPEND_BYTES` is refused as `PayloadTooLarge` with a smaller entry
//! count, which openraft retries at once: one append must fit its timeout (the
//! heartbeat interval).

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::faults::{Fault, NetworkFaults};
use crate::peer_wire::{self, RpcKind};
use crate::types::{PeerNode, TypeConfig};

/// How long establishing a connection to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Request timeout when openraft gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest append body sent with more than one entry (a single entry goes anyway).
const MAX_APPEND_BYTES: usize = 4 << 20;
/// HTTP/2 pings on idle connections find peers that vanished without closing.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How a node reaches its peers: the HTTP/2 client every shard group shares and
/// the URL scheme (`https` when the peer listeners speak mutual TLS).
#[derive(Clone, Debug)]
pub struct PeerTransport {
    pub client: reqwest::Client,
    pub scheme: &'static str,
}

impl PeerTransport {
    /// Posts the bincode of `body` to `url` (a peer RPC of `peer_wire`) and decodes the
    /// bincode answer; `what` names the request in errors. A transport failure or a
    /// status other than 200 is `Unavailable`.
    pub(crate) async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
        timeout: Duration,
        what: &str,
    ) -> Result<R, Error> {
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .timeout(timeout)
            .body(peer_wire::encode(body))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("{what} to {url}: {e}")))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(Error::Unavailable(format!("{url} answered {status} to a {what}")));
        }
        let answer = response.bytes().await.map_err(|e| Error::Unavailable(format!("{what} answer: {e}")))?;
        peer_wire::decode(&answer)
    }

    /// Plain HTTP/2, or mutual TLS with `tls` (the node's peer certificate and the
    /// cluster CA).
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Result<PeerTransport, Error> {
        let builder = reqwest::Client::builder();
        let (builder, scheme) = match tls {
            Some(config) => (builder.use_preconfigured_tls((*config).clone()), "https"),
            None => (builder, "http"),
        };
        Ok(PeerTransport { client: peer_client(builder)?, scheme })
    }
}

fn peer_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, Error> {
    builder
        .http2_prior_knowledge()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .no_proxy()
        .http2_keep_alive_interval(KEEP_ALIVE)
        .http2_keep_alive_timeout(KEEP_ALIVE)
        .http2_keep_alive_while_idle(true)
        .build()
        .map_err(|e| Error::Config(format!("peer HTTP client: {e}")))
}

/// Creates the connections of one shard group to its peers; cheap to clone.
#[derive(Clone, Debug)]
pub struct PeerNetwork {
    shard: u32,
    node_id: u64,
    transport: PeerTransport,
    faults: Arc<NetworkFaults>,
}

impl PeerNetwork {
    /// The network of `shard`'s group on node `node_id`.
    pub fn new(shard: u32, node_id: u64, transport: PeerTransport, faults: Arc<NetworkFaults>) -> PeerNetwork {
        PeerNetwork { shard, node_id, transport, faults }
    }
}

/// One shard group's connection to one peer. The URLs are built once, here.
#[derive(Debug)]
pub struct PeerConnection {
    shard: u32,
    from: u64,
    target: u64,
    client: reqwest::Client,
    faults: Arc<NetworkFaults>,
    /// The URL of each `RpcKind` (in `RpcKind::ALL` order), or why there is none.
    urls: [Result<reqwest::Url, String>; RpcKind::ALL.len()],
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerConnection {
        let urls = RpcKind::ALL.map(|kind| {
            let url = peer_wire::rpc_url(self.transport.scheme, &node.peer_addr, self.shard, kind);
            reqwest::Url::parse(&url).map_err(|e| format!("bad peer address {:?}: {e}", node.peer_addr))
        });
        tracing::debug!(shard = self.shard, target, peer_addr = %node.peer_addr, "peer connection created");
        PeerConnection {
            shard: self.shard,
            from: self.node_id,
            target,
            client: self.transport.client.clone(),
            faults: self.faults.clone(),
            urls,
        }
    }
}

fn unreachable<E: std::error::Error>(error: &Error) -> RPCError<u64, PeerNode, E> {
    RPCError::Unreachable(Unreachable::new(error))
}

fn network<E: std::error::Error>(error: &Error) -> RPCError<u64, PeerNode, E> {
    RPCError::Network(NetworkError::new(error))
}

impl PeerConnection {
    /// Sends one RPC (`body`, the encoded request) and decodes the remote `Result`.
    async fn call<Resp, E>(
        &self,
        kind: RpcKind,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, PeerNode, RaftError<u64, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let (shard, from, target) = (self.shard, self.from, self.target);
        match self.faults.check(from, target) {
            Fault::None => {}
            Fault::Blocked => {
                tracing::trace!(shard, from, target, %kind, "send blocked by fault injection");
                return Err(unreachable(&Error::Unavailable(format!(
                    "link {from}->{target} blocked by fault injection"
                ))));
            }
            Fault::Delay(delay) => tokio::time::sleep(delay).await,
        }
        let url = match &self.urls[kind as usize] {
            Ok(url) => url.clone(),
            Err(reason) => return Err(unreachable(&Error::Config(reason.clone()))),
        };
        let ttl = option.hard_ttl();
        let timeout = if ttl.is_zero() { DEFAULT_TIMEOUT } else { ttl + ttl / 2 };
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|e| self.transport_error(kind, e))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            tracing::debug!(shard, target, %kind, status = status.as_u16(), "peer refused a raft rpc");
            return Err(network(&Error::Unavailable(format!("node {target} answered {status} to {kind}"))));
        }
        let body = response.bytes().await.map_err(|e| self.transport_error(kind, e))?;
        let answer: Result<Resp, RaftError<u64, E>> = peer_wire::decode(&body).map_err(|e| {
            tracing::warn!(shard, target, %kind, error = %e, "undecodable raft rpc answer");
            network(&e)
        })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }

    fn transport_error<E: std::error::Error>(&self, kind: RpcKind, e: reqwest::Error) -> RPCError<u64, PeerNode, E> {
        let error = Error::Unavailable(format!("{kind} to node {}: {e}", self.target));
        if e.is_connect() || e.is_timeout() {
            tracing::trace!(shard = self.shard, target = self.target, %kind, error = %e, "peer unreachable");
            unreachable(&error)
        } else {
            tracing::debug!(shard = self.shard, target = self.target, %kind, error = %e, "peer rpc failed");
            network(&error)
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, PeerNode, RaftError<u64>>> {
        let body = peer_wire::encode(&rpc);
        if body.len() > MAX_APPEND_BYTES && rpc.entries.len() > 1 {
            let entries = rpc.entries.len() as u64;
            let hint = (entries * MAX_APPEND_BYTES as u64 / body.len() as u64).clamp(1, entries - 1);
            tracing::debug!(
                shard = self.shard,
                target = self.target,
                entries,
                bytes = body.len(),
                hint,
                "append too large; splitting"
            );
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        self.call(RpcKind::Append, body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, PeerNode, RaftError<u64, InstallSnapshotError>>> {
        self.call(RpcKind::Snapshot, peer_wire::encode(&rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, PeerNode, RaftError<u64>>> {
        self.call(RpcKind::Vote, peer_wire::encode(&rpc), &option).await
    }
}
