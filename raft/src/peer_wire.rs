//! The peer transport format, shared by the client (`network`) and the server side
//! (`Shards::handle_peer_rpc`, called by the server's peer listener).
//!
//! Membership requests (`membership`) use the same listener and format at
//! `POST /peer/v1/membership/{shard}`.
//!
//! One RPC is one HTTP/2 `POST {http|https}://{peer_addr}/peer/v1/raft/{shard}/{kind}` with
//! `kind` one of `append`, `vote`, `snapshot`, `records`. The request body is the
//! bincode of the openraft request; a 200 response body is the bincode of
//! `Result<Response, RaftError<u64, E>>` (`E` = `Infallible` for append and vote,
//! `InstallSnapshotError` for snapshot), so errors raised by the remote Raft travel
//! back as data. `records` is pixstream's own: the bincode of a
//! `record_fetch::RecordsRequest` in, of a `RecordsAnswer` out (the messages and
//! audit records a replica installing a snapshot lacks). Anything else (an unknown shard, a body that does not decode) is
//! the listener's to answer with a non-200 status.
//!
//! bincode 2 with the standard configuration, through serde: openraft's types are
//! serde, and none of them needs a self-describing format.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Path prefix of every Raft RPC on the peer listener.
pub const PEER_RAFT_PATH: &str = "/peer/v1/raft";

/// The RPCs of a shard group; `kind as usize` is the kind's position in `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RpcKind {
    Append = 0,
    Vote = 1,
    Snapshot = 2,
    /// Records a snapshot names, for a replica installing it.
    Records = 3,
}

impl RpcKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RpcKind; 4] = [RpcKind::Append, RpcKind::Vote, RpcKind::Snapshot, RpcKind::Records];

    /// The path segment naming the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            RpcKind::Append => "append",
            RpcKind::Vote => "vote",
            RpcKind::Snapshot => "snapshot",
            RpcKind::Records => "records",
        }
    }

    /// Parses a path segment.
    pub fn parse(text: &str) -> Option<RpcKind> {
        RpcKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for RpcKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Path prefix of membership requests on the peer listener
/// (`POST {MEMBERSHIP_PATH}/{shard}`: bincode of the desired node map in, bincode of
/// a `membership::MembershipAnswer` out).
pub const MEMBERSHIP_PATH: &str = "/peer/v1/membership";

/// The URL of the membership request of `shard` on the node at `peer_addr`.
pub fn membership_url(scheme: &str, peer_addr: &str, shard: u32) -> String {
    format!("{scheme}://{peer_addr}{MEMBERSHIP_PATH}/{shard}")
}

/// Path prefix of campaign requests on the peer listener (`POST
/// {CAMPAIGN_PATH}/{shard}`: bincode of the time allowed in milliseconds in, bincode
/// of the shard's leader afterwards, `Option<u64>`, out): the shard's leader asks
/// the target of a leader transfer to run for election.
pub const CAMPAIGN_PATH: &str = "/peer/v1/campaign";

/// The URL of the campaign request of `shard` on the node at `peer_addr`.
pub fn campaign_url(scheme: &str, peer_addr: &str, shard: u32) -> String {
    format!("{scheme}://{peer_addr}{CAMPAIGN_PATH}/{shard}")
}

/// The URL of RPC `kind` of `shard` on the node listening at `peer_addr`.
pub fn rpc_url(scheme: &str, peer_addr: &str, shard: u32, kind: RpcKind) -> String {
    format!("{scheme}://{peer_addr}{PEER_RAFT_PATH}/{shard}/{kind}")
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a request or response body.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // openraft's messages are plain data (no maps with non-string keys, no unsized
    // sequences); encoding such values into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, config()).expect("plain data always encodes")
}

/// Decodes a request or response body; trailing bytes are refused.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config()).map_err(|e| Error::Wire(e.to_string()))?;
    if read != bytes.len() {
        return Err(Error::Wire(format!("{} trailing bytes after the message", bytes.len() - read)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
        VoteResponse,
    };
    use openraft::{CommittedLeaderId, Entry, EntryPayload, Membership, SnapshotSegmentId, Vote};
    use storage::Command;

    use super::*;
    use crate::types::{LogId, PeerNode, Request, SnapshotMeta, StoredMembership, TypeConfig};

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn urls_name_shard_and_kind() {
        assert_eq!(rpc_url("http", "10.0.0.1:7400", 3, RpcKind::Vote), "http://10.0.0.1:7400/peer/v1/raft/3/vote");
        for (position, kind) in RpcKind::ALL.into_iter().enumerate() {
            assert_eq!(RpcKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind as usize, position);
        }
        assert_eq!(RpcKind::parse("elect"), None);
    }

    #[test]
    fn append_entries_round_trip() {
        let ispb = storage::Ispb::parse("32074986").expect("valid");
        let membership = Membership::new(
            vec![[1u64, 2, 3].into_iter().collect()],
            [(1u64, PeerNode { peer_addr: "a:1".into(), region: "r".into() })]
                .into_iter()
                .collect::<std::collections::BTreeMap<u64, PeerNode>>(),
        );
        let request: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
            vote: Vote::new_committed(4, 1),
            prev_log_id: Some(log_id(3, 9)),
            leader_commit: Some(log_id(3, 8)),
            entries: vec![
                Entry { log_id: log_id(4, 10), payload: EntryPayload::Blank },
                Entry { log_id: log_id(4, 11), payload: EntryPayload::Membership(membership) },
                Entry {
                    log_id: log_id(4, 12),
                    payload: EntryPayload::Normal(Request {
                        commands: vec![Command::CloseStream {
                            ispb,
                            stream: 7,
                            generation: 2,
                            now_ms: 0,
                            origin: Default::default(),
                        }],
                    }),
                },
            ],
        };
        let bytes = encode(&request);
        let back: AppendEntriesRequest<TypeConfig> = decode(&bytes).expect("decodes");
        assert_eq!(encode(&back), bytes, "re-encoding gives the same bytes");
        assert_eq!(
            (back.vote, back.prev_log_id, back.leader_commit),
            (request.vote, request.prev_log_id, request.leader_commit)
        );
        let Some(EntryPayload::Normal(normal)) = back.entries.get(2).map(|e| &e.payload) else {
            panic!("the third entry is a normal one");
        };
        assert_eq!(
            normal.commands,
            vec![Command::CloseStream { ispb, stream: 7, generation: 2, now_ms: 0, origin: Default::default() }]
        );

        let ok: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(4, 11))));
        let back: Result<AppendEntriesResponse<u64>, RaftError<u64>> = decode(&encode(&ok)).expect("decodes");
        assert_eq!(back, ok);
        let fatal: Result<AppendEntriesResponse<u64>, RaftError<u64>> = Err(RaftError::Fatal(Fatal::Stopped));
        let back: Result<AppendEntriesResponse<u64>, RaftError<u64>> = decode(&encode(&fatal)).expect("decodes");
        assert_eq!(back, fatal);
    }

    #[test]
    fn vote_and_snapshot_round_trip() {
        let vote = VoteRequest { vote: Vote::new(5, 2), last_log_id: Some(log_id(4, 12)) };
        let back: VoteRequest<u64> = decode(&encode(&vote)).expect("decodes");
        assert_eq!(back, vote);
        let answer: Result<VoteResponse<u64>, RaftError<u64>> =
            Ok(VoteResponse { vote: Vote::new(5, 2), vote_granted: true, last_log_id: None });
        let back: Result<VoteResponse<u64>, RaftError<u64>> = decode(&encode(&answer)).expect("decodes");
        assert_eq!(back, answer);

        let meta = SnapshotMeta {
            last_log_id: Some(log_id(4, 12)),
            last_membership: StoredMembership::default(),
            snapshot_id: "4-12-1".into(),
        };
        let chunk: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
            vote: Vote::new_committed(4, 1),
            meta,
            offset: 4096,
            data: vec![7; 100],
            done: true,
        };
        let back: InstallSnapshotRequest<TypeConfig> = decode(&encode(&chunk)).expect("decodes");
        assert_eq!(back, chunk);
        let mismatch: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                expect: SnapshotSegmentId { id: "a".into(), offset: 0 },
                got: SnapshotSegmentId { id: "a".into(), offset: 9 },
            })));
        let back: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            decode(&encode(&mismatch)).expect("decodes");
        assert_eq!(back, mismatch);
    }

    #[test]
    fn garbage_and_trailing_bytes_are_refused() {
        assert!(matches!(decode::<VoteRequest<u64>>(&[0xff; 3]), Err(Error::Wire(_))));
        let mut bytes = encode(&VoteRequest { vote: Vote::new(1, 1), last_log_id: None });
        bytes.push(0);
        assert!(matches!(decode::<VoteRequest<u64>>(&bytes), Err(Error::Wire(_))));
    }
}
