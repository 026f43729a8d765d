//! A puller's own HTTP/1.1 connection, driven on the puller's task: requests are
//! built from a path (no URL parsing, no pool checkout), the connection is polled
//! beside the request it carries (no hand-off to a connection task on another
//! thread), and a connection that broke is replaced by the next request. With a
//! shared `reqwest` pool, URL parsing, pool checkout and the dispatch task cost the
//! tool more CPU per pull than the server spends answering an empty keep-alive GET.
//! `--http2` and `--gzip` runs keep the `reqwest` pools.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, Connection as Driver, SendRequest};
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why an exchange failed, as the report counts it.
#[derive(Debug)]
pub enum TransportError {
    Connect(std::io::Error),
    Timeout,
    /// The connection failed before or while the answer head came.
    Exchange(hyper::Error),
    /// The answer head came, its body did not.
    Body(hyper::Error),
    /// The connection closed with the request in flight.
    Closed,
    /// The path is not a valid request target.
    Target,
}

impl TransportError {
    /// The kind named in the report's error lines.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Connect(_) => "connect",
            TransportError::Timeout => "timeout",
            TransportError::Body(_) => "body",
            TransportError::Exchange(_) | TransportError::Closed | TransportError::Target => "error",
        }
    }
}

/// One answer: status, headers and the whole body.
pub struct Exchanged {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type Io = TokioIo<TcpStream>;

/// A connection to one `host:port`, opened on first use and after a failure.
pub struct Connection {
    addr: String,
    host: HeaderValue,
    timeout: Duration,
    live: Option<Live>,
}

struct Live {
    sender: SendRequest<Empty<Bytes>>,
    driver: Pin<Box<Driver<Io, Empty<Bytes>>>>,
}

impl Connection {
    /// A connection to the authority of `base` (`http://host:port`); `None` for a
    /// base that is not plain HTTP.
    pub fn new(base: &str, timeout: Duration) -> Option<Connection> {
        let authority = base.strip_prefix("http://")?.split('/').next()?;
        let host = HeaderValue::from_str(authority).ok()?;
        Some(Connection { addr: authority.to_owned(), host, timeout, live: None })
    }

    /// Sends `method path` with `headers` and reads the whole answer, within the
    /// timeout. A failed exchange drops the connection; the next one opens a new one.
    pub async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Exchanged, TransportError> {
        match tokio::time::timeout(self.timeout, self.exchange_untimed(method, path, headers)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.live = None;
                Err(TransportError::Timeout)
            }
        }
    }

    async fn exchange_untimed(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Exchanged, TransportError> {
        let target: Uri = path.parse().map_err(|_| TransportError::Target)?;
        let reused = self.live.is_some();
        match self.exchange_once(method.clone(), target.clone(), headers).await {
            // A kept-alive connection the node closed while idle: say it again on a
            // new one (nothing was answered, so nothing was done).
            Err(TransportError::Exchange(_) | TransportError::Closed) if reused => {
                self.live = None;
                self.exchange_once(method, target, headers).await
            }
            outcome => outcome,
        }
    }

    async fn exchange_once(
        &mut self,
        method: Method,
        target: Uri,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Exchanged, TransportError> {
        let mut request = Request::new(Empty::new());
        *request.method_mut() = method;
        *request.uri_mut() = target;
        let outgoing = request.headers_mut();
        outgoing.insert(HOST, self.host.clone());
        for (name, value) in headers {
            outgoing.insert(name, value.clone());
        }
        let live = match &mut self.live {
            Some(live) if !live.sender.is_closed() => live,
            slot => slot.insert(open(&self.addr).await?),
        };
        let Live { sender, driver } = live;
        let exchanged = async {
            sender.ready().await.map_err(TransportError::Exchange)?;
            let response = sender.send_request(request).await.map_err(TransportError::Exchange)?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(TransportError::Body)?.to_bytes();
            Ok(Exchanged { status: parts.status, headers: parts.headers, body })
        };
        let outcome = tokio::select! {
            biased;
            exchanged = exchanged => exchanged,
            _ = driver.as_mut() => Err(TransportError::Closed),
        };
        if outcome.is_err() {
            self.live = None;
        }
        outcome
    }
}

async fn open(addr: &str) -> Result<Live, TransportError> {
    let stream = TcpStream::connect(addr).await.map_err(TransportError::Connect)?;
    stream.set_nodelay(true).map_err(TransportError::Connect)?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await.map_err(TransportError::Exchange)?;
    Ok(Live { sender, driver: Box::pin(driver) })
}
