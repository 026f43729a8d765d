//! A test-only peer listener: `POST /peer/v1/raft/{shard}/{kind}` handed to
//! `Shards::handle_peer_rpc`, over HTTP/1 and HTTP/2 (the client uses HTTP/2 with
//! prior knowledge). Until the node's `Shards` is set it answers 503, so a
//! listener can be up before its node starts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use raft::{Error, PEER_RAFT_PATH, Shards};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The node a listener serves, once it exists.
pub type Slot = Arc<OnceLock<Shards>>;

/// A running peer listener.
pub struct PeerServer {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl PeerServer {
    /// Serves `listener` for whatever `slot` will hold.
    pub fn spawn(listener: TcpListener, slot: Slot) -> PeerServer {
        let router = Router::new()
            .route(&format!("{PEER_RAFT_PATH}/{{shard}}/{{kind}}"), post(handle))
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(slot);
        let cancel = CancellationToken::new();
        let stop = cancel.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
                tracing::warn!(%error, "peer listener failed");
            }
        });
        PeerServer { cancel, task }
    }

    /// Stops accepting, lets open connections finish briefly, then drops them.
    pub async fn stop(self) {
        self.cancel.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
            task.abort();
        }
    }
}

async fn handle(State(slot): State<Slot>, Path((shard, kind)): Path<(u32, String)>, body: Bytes) -> Response {
    let Some(shards) = slot.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "node starting").into_response();
    };
    match shards.handle_peer_rpc(shard, &kind, &body).await {
        Ok(answer) => (StatusCode::OK, answer).into_response(),
        Err(Error::BadRequest(reason)) => (StatusCode::BAD_REQUEST, reason).into_response(),
        Err(error @ Error::NotMember { .. }) => (StatusCode::NOT_FOUND, error.to_string()).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
