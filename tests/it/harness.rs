//! The in-process test harness: a node on a temp dir with port-0 listeners, an HTTP
//! client that sees the wire as a PSP does (no transparent gzip), helpers for the
//! producer and pull APIs, and independent checks of what the server answers
//! (RFC 7807 problems, `multipart/mixed` bodies parsed by `mailparse`, header formats).

#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use pixstream::config::Config;
use pixstream::server::{self, RunningNode};
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

/// The ISPB most tests pull for.
pub const ISPB: &str = "32074986";
/// A second participant.
pub const OTHER_ISPB: &str = "99999A03";

/// `Accept: multipart/mixed` (batches of up to 10).
pub const MULTI: Option<&str> = Some("multipart/mixed");
/// No `Accept` header (one bare XML message).
pub const SINGLE: Option<&str> = None;

/// Longest any single HTTP exchange of a test may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client and the two base URLs of a node; cheap to clone into tasks.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    /// `http://127.0.0.1:port` of the public (PSP) listener.
    pub public: String,
    /// `http://127.0.0.1:port` of the internal (producer) listener.
    pub internal: String,
}

/// The client every test uses: no transparent decompression, so `Content-Encoding`
/// stays visible; bounded request time.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().timeout(REQUEST_TIMEOUT).build().expect("http client")
}

/// One node running in this process on a temp dir.
pub struct TestNode {
    pub api: Api,
    pub config: Config,
    node: Option<RunningNode>,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestNode {
    /// Starts a node with the test defaults (no fsync, 300 ms long poll, 5 s idle
    /// timeout), then `tweak` applied.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut config = Config::embedded(dir.path(), any, any);
        config.fsync = false;
        config.long_poll_wait = Duration::from_millis(300);
        config.stream_idle_timeout = Duration::from_secs(5);
        tweak(&mut config);
        let (node, shutdown) = launch(config.clone()).await;
        let api = Api {
            client: client(),
            public: format!("http://{}", node.public_addr),
            internal: format!("http://{}", node.internal_addr),
        };
        TestNode { api, config, node: Some(node), shutdown, dir }
    }

    /// The running node's shared state.
    pub fn app(&self) -> &pixstream::app::App {
        &self.node.as_ref().expect("node is running").app
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the node (graceful: long polls answered, RocksDB flushed and closed).
    pub async fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            self.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(30), node.stopped()).await.expect("node stops within 30 s");
        }
    }

    /// Stops the node and starts it again on the same data dir with the same config
    /// (new ports: `PI-Pull-Next` paths are relative, so tokens keep working).
    pub async fn restart(&mut self) {
        self.stop_node().await;
        let (node, shutdown) = launch(self.config.clone()).await;
        self.api.public = format!("http://{}", node.public_addr);
        self.api.internal = format!("http://{}", node.internal_addr);
        self.api.client = client();
        self.node = Some(node);
        self.shutdown = shutdown;
    }

    /// Stops the node at the end of a test.
    pub async fn stop(mut self) {
        self.stop_node().await;
    }

    /// A tenant's replicated state, as the state machine holds it.
    pub fn tenant(&self, ispb: &str) -> Option<storage::TenantState> {
        let ispb = storage::Ispb::parse(ispb).expect("valid ISPB");
        self.app().shards.read(&ispb, |machine| machine.tenant(&ispb).cloned()).flatten()
    }

    /// `next_seq` of a tenant, 1 when it does not exist: "how many were stored + 1".
    pub fn next_seq(&self, ispb: &str) -> u64 {
        self.tenant(ispb).map_or(1, |t| t.next_seq)
    }

    /// The confirmed low watermark of a tenant (1 when it does not exist).
    pub fn watermark(&self, ispb: &str) -> u64 {
        self.tenant(ispb).map_or(1, |t| t.watermark)
    }

    /// Open streams of a tenant.
    pub fn open_streams(&self, ispb: &str) -> usize {
        self.tenant(ispb).map_or(0, |t| t.streams.len())
    }

    /// Messages stored for `ispb` at `seqs`.
    pub fn stored(&self, ispb: &str, seqs: &[u64]) -> Vec<storage::StoredMessage> {
        let ispb = storage::Ispb::parse(ispb).expect("valid ISPB");
        self.app().store.read_messages(&ispb, seqs).expect("read stored messages")
    }

    /// Waits (bounded) until `condition` holds; returns how long it took.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        mut condition: impl FnMut(&TestNode) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if condition(self) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "timed out after {within:?} waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn launch(config: Config) -> (RunningNode, CancellationToken) {
    let shutdown = CancellationToken::new();
    let node = tokio::time::timeout(Duration::from_secs(60), server::start(config, shutdown.clone()))
        .await
        .expect("node starts within 60 s")
        .unwrap_or_else(|e| panic!("node failed to start: {e}"));
    (node, shutdown)
}

// ---------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------

/// Realistic SPI envelopes for `ispb` from the server's own sample generator, mixed
/// kinds, each with a fresh BizMsgIdr.
pub fn samples(ispb: &str, n: usize) -> Vec<String> {
    use loadgen::sample::{SampleKind, sample_message};
    let mut rng = rand::rngs::StdRng::from_entropy();
    (0..n)
        .map(|i| sample_message(SampleKind::ALL[i % SampleKind::ALL.len()], ispb, &mut rng).body.to_string())
        .collect()
}

/// A BizMsgIdr nobody used before (≤ 35 characters).
pub fn unique_biz() -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..30).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
    format!("M{tail}")
}

/// An SPI envelope addressed to `to`, written here independently of the server.
pub fn envelope(to: &str, biz: &str, msg_type: &str, document_inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Envelope xmlns=\"https://www.bcb.gov.br/pi/pacs.008/1.14\"><AppHdr>\
         <Fr><FIId><FinInstnId><Othr><Id>00038166</Id></Othr></FinInstnId></FIId></Fr>\
         <To><FIId><FinInstnId><Othr><Id>{to}</Id></Othr></FinInstnId></FIId></To>\
         <BizMsgIdr>{biz}</BizMsgIdr><MsgDefIdr>{msg_type}</MsgDefIdr><CreDt>2026-11-27T08:18:00Z</CreDt>\
         </AppHdr><Document><FIToFICstmrCdtTrf>{document_inner}</FIToFICstmrCdtTrf></Document></Envelope>"
    )
}

/// A valid pacs.008 envelope for `to` with a fresh BizMsgIdr.
pub fn message(to: &str) -> String {
    envelope(to, &unique_biz(), "pacs.008.spi.1.14", "<GrpHdr><MsgId>x</MsgId></GrpHdr>")
}

/// `n` distinct valid envelopes for `to`.
pub fn messages(to: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| message(to)).collect()
}

/// The text of the first `<tag>` element (namespace prefix ignored), e.g. `MsgDefIdr`.
pub fn element_text(xml: &str, tag: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = xml[from..].find('<') {
        let start = from + at + 1;
        let end = start + xml[start..].find('>')?;
        let name = xml[start..end].split_whitespace().next().unwrap_or_default();
        let local = name.rsplit(':').next().unwrap_or_default();
        if !name.starts_with('/') && local == tag {
            let text_end = end + 1 + xml[end + 1..].find('<')?;
            return Some(xml[end + 1..text_end].trim().to_owned());
        }
        from = end;
    }
    None
}

/// Whether every LF in `bytes` is preceded by CR.
pub fn crlf_only(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, b)| *b != b'\n' || (i > 0 && bytes[i - 1] == b'\r'))
}

// ---------------------------------------------------------------------------------
// Producer API
// ---------------------------------------------------------------------------------

/// One message of a producer `multipart/mixed` request.
#[derive(Clone, Debug)]
pub struct OutPart {
    pub body: Vec<u8>,
    pub resource_id: Option<String>,
    pub content_type: Option<String>,
}

impl OutPart {
    pub fn xml(body: impl Into<Vec<u8>>) -> OutPart {
        OutPart { body: body.into(), resource_id: None, content_type: Some("application/xml".into()) }
    }

    pub fn with_id(mut self, id: &str) -> OutPart {
        self.resource_id = Some(id.to_owned());
        self
    }
}

/// What the producer API reported for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub resource_id: String,
    pub duplicate: bool,
}

/// Renders a producer multipart body with a boundary of our own.
pub fn multipart_body(parts: &[OutPart]) -> (String, Vec<u8>) {
    let boundary = format!("it-boundary-{:016x}", rand::thread_rng().r#gen::<u64>());
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(ct) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        if let Some(id) = &part.resource_id {
            body.extend_from_slice(format!("PI-ResourceId: {id}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary=\"{boundary}\""), body)
}

impl Api {
    /// `POST /internal/v1/out/{ispb}/msgs` with one `application/xml` message.
    pub async fn post_xml(
        &self,
        ispb: &str,
        body: impl Into<reqwest::Body>,
        resource_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/internal/v1/out/{ispb}/msgs", self.internal))
            .header("content-type", "application/xml")
            .body(body);
        if let Some(id) = resource_id {
            request = request.header("pi-resourceid", id);
        }
        request.send().await.expect("POST answered")
    }

    /// `POST /internal/v1/out/{ispb}/msgs` with a `multipart/mixed` batch.
    pub async fn post_multipart(&self, ispb: &str, parts: &[OutPart]) -> reqwest::Response {
        let (content_type, body) = multipart_body(parts);
        self.post_raw(ispb, &content_type, body).await
    }

    /// `POST /internal/v1/out/{ispb}/msgs` with any content type and body.
    pub async fn post_raw(&self, ispb: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}/internal/v1/out/{ispb}/msgs", self.internal))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST answered")
    }

    /// Appends `bodies` in one request (bare XML for one, multipart for more) and
    /// asserts a 201 with one fresh outcome per message, in order.
    pub async fn append(&self, ispb: &str, bodies: &[String]) -> Vec<Appended> {
        let response = if bodies.len() == 1 {
            self.post_xml(ispb, bodies[0].clone(), None).await
        } else {
            let parts: Vec<OutPart> = bodies.iter().map(|b| OutPart::xml(b.as_bytes())).collect();
            self.post_multipart(ispb, &parts).await
        };
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::CREATED, "append of {} messages: {text}", bodies.len());
        let appended = parse_appended(&text);
        assert_eq!(appended.len(), bodies.len());
        assert!(appended.iter().all(|a| !a.duplicate), "fresh messages reported as duplicates: {appended:?}");
        appended
    }

    /// Appends `bodies` in requests of at most 100 messages.
    pub async fn append_all(&self, ispb: &str, bodies: &[String]) -> Vec<Appended> {
        let mut out = Vec::new();
        for chunk in bodies.chunks(100) {
            out.extend(self.append(ispb, chunk).await);
        }
        out
    }

    /// A request on the public listener, `path` being absolute (e.g. a `PI-Pull-Next`).
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.public));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request answered")
    }

    /// `GET path` with an optional `Accept`.
    pub async fn get(&self, path: &str, accept: Option<&str>) -> reqwest::Response {
        match accept {
            Some(a) => self.request(Method::GET, path, &[("accept", a)]).await,
            None => self.request(Method::GET, path, &[]).await,
        }
    }

    /// `GET /api/v1/out/{ispb}/stream/start`, asserting 200/204 and parsing it.
    pub async fn start_stream(&self, ispb: &str, accept: Option<&str>) -> Pulled {
        pulled(self.get(&start_path(ispb), accept).await).await
    }

    /// `GET path` (a `PI-Pull-Next`), asserting 200/204 and parsing it.
    pub async fn follow(&self, path: &str, accept: Option<&str>) -> Pulled {
        pulled(self.get(path, accept).await).await
    }

    /// `GET path` with `Accept: multipart/mixed`, passing transport errors back (for
    /// tests that retry through failovers).
    pub async fn follow_raw(&self, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.client.get(format!("{}{path}", self.public)).header("accept", "multipart/mixed").send().await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(Method::DELETE, path, &[]).await
    }

    /// Opens a stream and follows it until a 204, collecting every message; returns
    /// the messages, the batch sizes, and the last response.
    pub async fn drain(&self, ispb: &str, accept: Option<&str>) -> (Vec<Msg>, Vec<usize>, Pulled) {
        let mut pull = self.start_stream(ispb, accept).await;
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        for _ in 0..10_000 {
            if pull.status == StatusCode::NO_CONTENT {
                return (all, sizes, pull);
            }
            sizes.push(pull.messages.len());
            all.extend(pull.messages.iter().cloned());
            pull = self.follow(&pull.next, accept).await;
        }
        panic!("stream never ran dry");
    }
}

/// Reads a producer answer: status and outcomes (empty for problems).
pub async fn appended(response: reqwest::Response) -> (StatusCode, Vec<Appended>) {
    let status = response.status();
    let text = response.text().await.expect("body");
    if !status.is_success() {
        return (status, Vec::new());
    }
    (status, parse_appended(&text))
}

/// Parses a producer 200/201 JSON answer.
pub fn parse_appended(text: &str) -> Vec<Appended> {
    let json: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("producer answer is not JSON ({e}): {text}"));
    let list = json["messages"].as_array().unwrap_or_else(|| panic!("no `messages` array: {text}"));
    list.iter()
        .map(|m| Appended {
            seq: m["seq"].as_u64().unwrap_or_else(|| panic!("seq missing: {text}")),
            resource_id: m["resource_id"].as_str().unwrap_or_else(|| panic!("resource_id missing: {text}")).to_owned(),
            duplicate: m["duplicate"].as_bool().unwrap_or_else(|| panic!("duplicate missing: {text}")),
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Pull API
// ---------------------------------------------------------------------------------

pub fn start_path(ispb: &str) -> String {
    format!("/api/v1/out/{ispb}/stream/start")
}

/// One delivered message with its per-message headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub seq: u64,
    pub resource_id: String,
    pub msg_type: String,
    pub enqueued_at: String,
    pub body: Vec<u8>,
}

/// A 200 or 204 pull answer, checked and parsed.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as sent (possibly gzip).
    pub wire: Vec<u8>,
    /// The body after gunzip when `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    pub gzip: bool,
    pub messages: Vec<Msg>,
    /// `PI-Pull-Next`.
    pub next: String,
    /// `Pix-Stream-Slots`.
    pub slots: String,
}

impl Pulled {
    pub fn seqs(&self) -> Vec<u64> {
        self.messages.iter().map(|m| m.seq).collect()
    }

    pub fn ids(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.resource_id.clone()).collect()
    }

    /// The token part of `PI-Pull-Next`.
    pub fn token(&self) -> &str {
        self.next.rsplit('/').next().expect("path has segments")
    }
}

/// Asserts that `response` is a 200 or 204 pull answer and parses it, checking every
/// rule of SPEC §2.2 that holds for all such answers.
pub async fn pulled(response: reqwest::Response) -> Pulled {
    let status = response.status();
    let headers = response.headers().clone();
    let wire = response.bytes().await.expect("body").to_vec();
    assert!(
        status == StatusCode::OK || status == StatusCode::NO_CONTENT,
        "expected 200 or 204, got {status}: {}",
        String::from_utf8_lossy(&wire)
    );
    let next = header(&headers, "pi-pull-next").unwrap_or_else(|| panic!("{status} without PI-Pull-Next"));
    check_pull_next(&next);
    let slots = header(&headers, "pix-stream-slots").unwrap_or_else(|| panic!("{status} without Pix-Stream-Slots"));
    check_slots(&slots);
    let gzip = header(&headers, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip { gunzip(&wire) } else { wire.clone() };
    let mut messages = Vec::new();
    if status == StatusCode::NO_CONTENT {
        assert!(body.is_empty(), "204 with a body");
    } else {
        let content_type = header(&headers, "content-type").expect("200 without Content-Type");
        if content_type.to_ascii_lowercase().starts_with("multipart/mixed") {
            messages = parse_multipart(&content_type, &body);
            assert!((1..=10).contains(&messages.len()), "a batch holds 1 to 10 messages, got {}", messages.len());
        } else {
            assert_eq!(content_type, "application/xml; charset=utf-8");
            messages.push(message_from_headers(&headers, body.clone()));
        }
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs within a batch ascend: {seqs:?}");
    }
    Pulled { status, headers, wire, body, gzip, messages, next, slots }
}

/// `PI-Pull-Next` is `/api/v1/out/{ispb}/stream/{token}` with a base64url token of at
/// most 256 characters; returns the ISPB.
pub fn check_pull_next(next: &str) -> String {
    let rest = next.strip_prefix("/api/v1/out/").unwrap_or_else(|| panic!("PI-Pull-Next is not a stream path: {next}"));
    let (ispb, token) =
        rest.split_once("/stream/").unwrap_or_else(|| panic!("PI-Pull-Next is not a stream path: {next}"));
    assert_eq!(ispb.len(), 8, "ISPB in PI-Pull-Next: {next}");
    assert!(!token.is_empty() && token.len() <= 256, "token length {} in {next}", token.len());
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "token is not base64url without padding: {token}"
    );
    assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).is_ok(), "token does not decode: {token}");
    ispb.to_owned()
}

/// `Pix-Stream-Slots` is `<open>/6` with 1 ≤ open ≤ 6 on a successful read.
pub fn check_slots(slots: &str) {
    let (open, limit) = slots.split_once('/').unwrap_or_else(|| panic!("Pix-Stream-Slots {slots:?}"));
    let open: u32 = open.parse().unwrap_or_else(|_| panic!("Pix-Stream-Slots {slots:?}"));
    let limit: u32 = limit.parse().unwrap_or_else(|_| panic!("Pix-Stream-Slots {slots:?}"));
    assert!(limit >= 1 && open <= limit, "Pix-Stream-Slots {slots:?}");
}

/// A header as text.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v: &HeaderValue| v.to_str().expect("ASCII header").to_owned())
}

fn message_from_headers(headers: &HeaderMap, body: Vec<u8>) -> Msg {
    let get = |name: &str| header(headers, name).unwrap_or_else(|| panic!("message without {name}"));
    build_msg(get("pi-resourceid"), get("pix-sequence"), get("pix-message-type"), get("pix-enqueued-at"), body)
}

fn build_msg(resource_id: String, seq: String, msg_type: String, enqueued_at: String, body: Vec<u8>) -> Msg {
    assert!(!resource_id.is_empty(), "empty PI-ResourceId");
    let seq: u64 = seq.parse().unwrap_or_else(|_| panic!("Pix-Sequence {seq:?} is not a number"));
    assert!(seq >= 1, "seqs start at 1");
    assert!(!msg_type.is_empty(), "empty Pix-Message-Type");
    assert!(is_utc_millis(&enqueued_at), "Pix-Enqueued-At {enqueued_at:?} is not YYYY-MM-DDThh:mm:ss.sssZ");
    Msg { seq, resource_id, msg_type, enqueued_at, body }
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn is_utc_millis(text: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    text.len() == pattern.len()
        && text.bytes().zip(pattern.iter()).all(|(c, p)| if *p == b'd' { c.is_ascii_digit() } else { c == *p })
}

/// Decompresses a gzip body.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.starts_with(&[0x1f, 0x8b]), "Content-Encoding: gzip but no gzip magic");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

/// The `boundary` parameter of a `multipart/mixed` content type.
pub fn boundary_of(content_type: &str) -> String {
    let parsed = mailparse::parse_content_type(content_type);
    assert_eq!(parsed.mimetype, "multipart/mixed", "{content_type}");
    let boundary = parsed.params.get("boundary").unwrap_or_else(|| panic!("no boundary in {content_type}")).clone();
    assert!((1..=70).contains(&boundary.len()), "RFC 2046 boundary length: {boundary:?}");
    boundary
}

/// Parses a `multipart/mixed` pull body with `mailparse` (independent of the server's
/// renderer) and checks its framing: CRLF line ends, a closing delimiter, the boundary
/// absent from every part, each part `application/xml; charset=utf-8` with the
/// per-message headers.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Msg> {
    let boundary = boundary_of(content_type);
    let delimiter = format!("--{boundary}");
    // Framing on the wire.
    assert!(
        body.starts_with(format!("{delimiter}\r\n").as_bytes())
            || find(body, format!("\r\n{delimiter}\r\n").as_bytes()).is_some(),
        "no first delimiter line"
    );
    let close = format!("\r\n{delimiter}--");
    let close_at = find(body, close.as_bytes()).unwrap_or_else(|| panic!("no closing delimiter"));
    let after = &body[close_at + close.len()..];
    assert!(after.is_empty() || after == b"\r\n", "unexpected bytes after the closing delimiter");
    let raw_parts = split_parts(body, &delimiter);
    for raw in &raw_parts {
        let header_end = find(raw, b"\r\n\r\n").expect("part headers end with CRLF CRLF");
        let head = &raw[..header_end];
        assert!(crlf_only(head), "part header lines end with CRLF");
        assert!(find(&raw[header_end + 4..], boundary.as_bytes()).is_none(), "boundary occurs inside a part");
    }
    // Independent parse.
    let mut mail = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    mail.extend_from_slice(body);
    let parsed = mailparse::parse_mail(&mail).expect("mailparse parses the body");
    assert_eq!(parsed.subparts.len(), raw_parts.len(), "mailparse and the framing check disagree on the part count");
    parsed
        .subparts
        .iter()
        .map(|part| {
            use mailparse::MailHeaderMap;
            let get = |name: &str| part.headers.get_first_value(name).unwrap_or_else(|| panic!("part without {name}"));
            assert_eq!(get("Content-Type"), "application/xml; charset=utf-8");
            let body = part.get_body_raw().expect("part body");
            build_msg(get("PI-ResourceId"), get("Pix-Sequence"), get("Pix-Message-Type"), get("Pix-Enqueued-At"), body)
        })
        .collect()
}

/// The raw parts between delimiter lines (for framing checks).
fn split_parts(body: &[u8], delimiter: &str) -> Vec<Vec<u8>> {
    let line = format!("{delimiter}\r\n");
    let mut parts = Vec::new();
    let mut from = if body.starts_with(line.as_bytes()) {
        line.len()
    } else {
        find(body, format!("\r\n{line}").as_bytes()).expect("first delimiter") + 2 + line.len()
    };
    loop {
        let sep = format!("\r\n{delimiter}");
        let end = from + find(&body[from..], sep.as_bytes()).expect("delimiter after part");
        parts.push(body[from..end].to_vec());
        let rest = &body[end + sep.len()..];
        if rest.starts_with(b"--") {
            return parts;
        }
        assert!(rest.starts_with(b"\r\n"), "delimiter line does not end with CRLF");
        from = end + sep.len() + 2;
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------

/// An RFC 7807 problem as answered.
#[derive(Debug)]
pub struct Problem {
    pub headers: HeaderMap,
    pub title: String,
    pub detail: String,
}

/// Asserts that `response` is the RFC 7807 XML problem `code` with `status`, in the
/// exact shape of SPEC §2.6, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Problem {
    let got = response.status();
    let headers = response.headers().clone();
    let url = response.url().path().to_owned();
    let body = response.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{url}: expected {status} {code}, got {got}: {body}");
    let content_type = header(&headers, "content-type").unwrap_or_default();
    assert!(
        content_type.to_ascii_lowercase().starts_with("application/problem+xml"),
        "{url}: problem Content-Type is {content_type:?}: {body}"
    );
    assert!(body.contains("<problem xmlns=\"urn:ietf:rfc:7807\">"), "{url}: not an RFC 7807 XML problem: {body}");
    assert_eq!(element_text(&body, "type").as_deref(), Some(format!("/api/v1/error/{code}").as_str()), "{url}: {body}");
    assert_eq!(element_text(&body, "status").as_deref(), Some(status.to_string().as_str()), "{url}: {body}");
    let title = element_text(&body, "title").unwrap_or_else(|| panic!("{url}: problem without title: {body}"));
    assert!(!title.is_empty(), "{url}: empty title");
    let detail = element_text(&body, "detail").unwrap_or_else(|| panic!("{url}: problem without detail: {body}"));
    assert!(!body.contains("/tmp/") && !body.contains("panicked"), "{url}: problem leaks internals: {body}");
    Problem { headers, title, detail }
}

/// `Retry-After` as an integer number of seconds (SPEC §2.4).
pub fn retry_after(headers: &HeaderMap) -> u64 {
    let text = header(headers, "retry-after").expect("Retry-After present");
    text.parse().unwrap_or_else(|_| panic!("Retry-After {text:?} is not an integer number of seconds"))
}

/// Decodes an XML problem `detail` as it was escaped.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The harness's own checks must bite: each is shown a broken input once.
mod selftest {
    use super::*;

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> bool {
        std::panic::catch_unwind(f).is_err()
    }

    fn part(seq: u64, body: &str) -> String {
        format!(
            "Content-Type: application/xml; charset=utf-8\r\nPI-ResourceId: id{seq}\r\nPix-Sequence: {seq}\r\n\
             Pix-Message-Type: pacs.008.spi.1.14\r\nPix-Enqueued-At: 2026-11-27T08:34:56.789Z\r\n\r\n{body}"
        )
    }

    #[test]
    fn multipart_checks_accept_good_framing_and_reject_bad() {
        let ct = "multipart/mixed; boundary=\"b0\"";
        let good = format!("--b0\r\n{}\r\n--b0\r\n{}\r\n--b0--\r\n", part(1, "<a/>"), part(2, "<b/>\r\n"));
        let parsed = parse_multipart(ct, good.as_bytes());
        assert_eq!(
            parsed.iter().map(|m| (m.seq, m.body.clone())).collect::<Vec<_>>(),
            vec![(1, b"<a/>".to_vec()), (2, b"<b/>\r\n".to_vec())]
        );
        let boundary_inside = format!("--b0\r\n{}\r\n--b0--\r\n", part(1, "<a>b0</a>"));
        assert!(panics(|| drop(parse_multipart(ct, boundary_inside.as_bytes()))));
        let lf_only = good.replace("\r\n", "\n");
        assert!(panics(|| drop(parse_multipart(ct, lf_only.as_bytes()))));
        let unclosed = format!("--b0\r\n{}\r\n", part(1, "<a/>"));
        assert!(panics(|| drop(parse_multipart(ct, unclosed.as_bytes()))));
        let wrong_type = good.replace("application/xml; charset=utf-8", "text/plain");
        assert!(panics(|| drop(parse_multipart(ct, wrong_type.as_bytes()))));
        let bad_time = good.replace("08:34:56.789Z", "08:34:56Z");
        assert!(panics(|| drop(parse_multipart(ct, bad_time.as_bytes()))));
    }

    #[test]
    fn small_parsers() {
        assert!(is_utc_millis("2026-11-27T08:34:56.789Z"));
        for bad in ["2026-11-27T08:34:56Z", "2026-11-27 08:34:56.789Z", "2026-11-27T08:34:56.789+00:00"] {
            assert!(!is_utc_millis(bad), "{bad}");
        }
        let xml = "<h:Envelope><h:AppHdr><h:MsgDefIdr> pacs.002 </h:MsgDefIdr></h:AppHdr></h:Envelope>";
        assert_eq!(element_text(xml, "MsgDefIdr").as_deref(), Some("pacs.002"));
        assert_eq!(element_text("<problem><type>/x</type></problem>", "type").as_deref(), Some("/x"));
        assert_eq!(element_text("<a/>", "b"), None);
        assert!(panics(|| drop(check_pull_next("/api/v1/out/32074986/stream/has=padding"))));
        assert!(panics(|| drop(check_pull_next("/elsewhere/32074986/stream/abc"))));
        assert!(panics(|| check_slots("7")));
    }
}
