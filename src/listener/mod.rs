//! The accept loop every listener runs (public, internal, peer), in place of
//! `axum::serve`, which has no header read timeout, no connection cap and no TLS:
//! - a connection cap: one connection more than `max_connections` is answered
//!   `503` with `Retry-After` (plain HTTP) or closed (TLS) at once;
//! - the TLS handshake (`tls`) under `tls_handshake_timeout`, with the client's
//!   verified certificate handed to every request of the connection as a
//!   `ConnectionInfo` extension;
//! - hyper's HTTP/1.1 and HTTP/2 server with a header read timeout (slowloris; also
//!   the idle timeout of keep-alive connections), a header count and a head size
//!   limit (both answered `431`);
//! - graceful shutdown: stop accepting, let requests in flight finish (long polls
//!   are answered by the pull service on shutdown), close the rest after a grace.

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use tls::{ReloadableTls, TlsError};

use crate::access::ClientCertificate;
use crate::config::ListenerLimits;
use crate::log_throttle::LogThrottle;
use wire::clock::now_ms;

/// How long connections may finish their requests after shutdown was signalled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Pause after an accept error (e.g. out of file descriptors) before the next accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The problem body a plain-HTTP client over the connection cap reads.
const OVER_CAPACITY_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<problem xmlns=\"urn:ietf:rfc:7807\"><type>/api/v1/error/unavailable</type><title>Serviço indisponível</title><status>503</status><detail>too many connections</detail></problem>";

/// The whole answer to a plain-HTTP connection over the cap.
fn over_capacity_answer() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/problem+xml; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{OVER_CAPACITY_BODY}",
        OVER_CAPACITY_BODY.len()
    )
}

/// The connection a request arrived on (a request extension).
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// The verified client certificate, when the client sent one.
    pub client_certificate: Option<Arc<ClientCertificate>>,
}

/// What one listener serves and how.
#[derive(Clone)]
pub struct Listener {
    /// `public`, `internal` or `peer`: for logs.
    pub name: &'static str,
    pub router: Router,
    pub limits: ListenerLimits,
    /// TLS, when the listener is configured with it.
    pub tls: Option<Arc<ReloadableTls>>,
}

impl Listener {
    /// Serves `socket` until `shutdown` is cancelled, then drains.
    pub fn spawn(self, socket: TcpListener, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(socket, shutdown))
    }

    async fn run(self, socket: TcpListener, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        let graceful = GracefulShutdown::new();
        let http = Arc::new(self.http_builder());
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = socket.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    static ACCEPT_FAILED: LogThrottle = LogThrottle::new();
                    if let Some(occurrences) = ACCEPT_FAILED.admit(now_ms(), 1_000) {
                        tracing::warn!(listener = self.name, %error, occurrences, "accept failed (at most one line a second)");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tokio::spawn(refuse_over_capacity(stream, self.tls.is_none(), self.name));
                continue;
            };
            let connection = Connection {
                listener: self.clone(),
                http: http.clone(),
                remote,
                watcher: graceful.watcher(),
                _slot: slot,
            };
            tokio::spawn(connection.serve(stream));
        }
        drop(socket);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
            tracing::warn!(listener = self.name, "connections still open after the shutdown grace; closing them");
        }
    }

    fn http_builder(&self) -> auto::Builder<TokioExecutor> {
        let limits = &self.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(limits.max_headers)
            .max_buf_size(limits.max_header_bytes)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(limits.header_read_timeout)
            .keep_alive_timeout(limits.header_read_timeout);
        builder
    }
}

/// One accepted connection, holding its slot of the cap until it closes.
struct Connection {
    listener: Listener,
    http: Arc<auto::Builder<TokioExecutor>>,
    remote: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Some(tls) = self.listener.tls.clone() else {
            let info = ConnectionInfo { remote: self.remote, client_certificate: None };
            return self.serve_http(stream, info).await;
        };
        let handshake = tls.acceptor().accept(stream);
        let stream = match tokio::time::timeout(self.listener.limits.tls_handshake_timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                static HANDSHAKE_FAILED: LogThrottle = LogThrottle::new();
                if let Some(occurrences) = HANDSHAKE_FAILED.admit(now_ms(), 1_000) {
                    tracing::info!(listener = self.listener.name, remote = %self.remote, %error, occurrences, "TLS handshake failed (at most one line a second)");
                }
                return;
            }
            Err(_) => {
                tracing::debug!(listener = self.listener.name, remote = %self.remote, "TLS handshake timed out");
                return;
            }
        };
        let client_certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(ClientCertificate::from_der(leaf.as_ref())));
        let info = ConnectionInfo { remote: self.remote, client_certificate };
        self.serve_http(stream, info).await;
    }

    async fn serve_http<IO>(self, io: IO, info: ConnectionInfo)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.listener.router.clone();
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(info.clone());
                request
            })
            .service(router);
        let connection = self.http.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        if let Err(error) = self.watcher.watch(connection).await {
            tracing::debug!(listener = self.listener.name, remote = %self.remote, %error, "connection ended with an error");
        }
    }
}

/// Answers a connection over the cap: a 503 for plain HTTP, a close for TLS.
async fn refuse_over_capacity(mut stream: TcpStream, plain: bool, listener: &'static str) {
    static OVER_CAP: LogThrottle = LogThrottle::new();
    if let Some(occurrences) = OVER_CAP.admit(now_ms(), 1_000) {
        tracing::warn!(
            listener,
            occurrences,
            "connection refused: listener at max_connections (at most one line a second)"
        );
    }
    if plain {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(over_capacity_answer().as_bytes())).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_is_a_complete_http_response() {
        let answer = over_capacity_answer();
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        assert!(body.contains("<status>503</status>"));
    }
}
