//! The `Api` client of one node as a PSP and a producer see it (no transparent
//! gzip, bounded request time) and its request helpers: producer posts, stream
//! start/follow/delete, draining, and writes retried through failovers.

use std::time::Instant;

use reqwest::{Method, StatusCode};

use super::answers::{Appended, Msg, Pulled, appended, parse_appended, pulled};
use super::messages::{OutPart, multipart_body};
use super::timing;

/// `Accept: multipart/mixed` (batches of up to 10).
pub const MULTI: Option<&str> = Some("multipart/mixed");
/// No `Accept` header (one bare XML message).
pub const SINGLE: Option<&str> = None;

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
    reqwest::Client::builder().no_gzip().timeout(timing::REQUEST).build().expect("http client")
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

    /// An admin call: `method` of `path` on the internal listener with a JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: &str) -> reqwest::Response {
        let request = self.client.request(method, format!("{}{path}", self.internal));
        request.header("content-type", "application/json").body(body.to_owned()).send().await.expect("answered")
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

pub fn start_path(ispb: &str) -> String {
    format!("/api/v1/out/{ispb}/stream/start")
}

/// Posts until 201/200 (retrying 503s and broken connections: the dedupe key makes
/// a retried post idempotent) and returns the outcomes.
pub async fn retry_until_created(api: &Api, ispb: &str, bodies: &[String]) -> Vec<Appended> {
    let deadline = Instant::now() + timing::UNAVAILABLE;
    loop {
        let parts: Vec<OutPart> = bodies.iter().map(|b| OutPart::xml(b.as_bytes())).collect();
        let (content_type, body) = multipart_body(&parts);
        let sent = api
            .client
            .post(format!("{}/internal/v1/out/{ispb}/msgs", api.internal))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            if status.is_success() {
                return appended(response).await.1;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "only 503 is retried");
        }
        assert!(Instant::now() < deadline, "no write was acknowledged for {:?}", timing::UNAVAILABLE);
        tokio::time::sleep(timing::RETRY_PAUSE).await;
    }
}
