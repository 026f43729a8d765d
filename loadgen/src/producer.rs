//! Producers: sample SPI envelopes posted to `POST /internal/v1/out/{ispb}/msgs`,
//! at a fixed total rate (tickets on a shared schedule, round-robin over the ISPBs) or
//! as a preload of N messages per ISPB. Every acknowledged message goes to the ledger
//! with the time its POST was first sent.
//!
//! Generating a 2 KB envelope per message would cost the tool more CPU than the server
//! spends storing it, so each ISPB gets one envelope from `sample::sample_of_size` at
//! start, and every message is that template with a fresh `BizMsgIdr` (the dedupe key):
//! its last 11 characters are replaced by a per-run nonce and a counter in base 62.
//! Request bodies are assembled in one exactly-sized buffer per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use tokio::task::JoinSet;
use wire::paths::append_path;

use crate::answers;
use crate::metrics::Role;
use crate::sample::sample_of_size;
use crate::shared::{Shared, jitter, transport_error_kind};

macro_rules! boundary {
    () => {
        "pixstream-bench-5b0e2c9d41f7a3"
    };
}
/// Boundary of producer multipart bodies (checked absent from every template).
const BOUNDARY: &str = boundary!();
const MULTIPART_TYPE: &str = concat!("multipart/mixed; boundary=\"", boundary!(), "\"");
/// Characters of the `BizMsgIdr` replaced per message.
const UNIQUE_CHARS: usize = 11;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Producer failures described on stderr (the rest are only counted).
const MAX_REPORTED_FAILURES: u64 = 5;

/// One message template per ISPB.
pub struct Templates {
    templates: Vec<Template>,
    /// High bits of every unique suffix: differs between runs.
    nonce: u64,
    counter: AtomicU64,
    failures_reported: AtomicU64,
}

struct Template {
    xml: Vec<u8>,
    /// Where the replaced tail of the `BizMsgIdr` starts.
    patch_at: usize,
}

impl Templates {
    /// Templates of about `bytes` bytes for each of `ispbs`.
    pub fn new(ispbs: &[String], bytes: usize) -> Templates {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let templates = ispbs
            .iter()
            .map(|ispb| {
                loop {
                    let xml = sample_of_size(ispb, bytes, &mut rng).body.into_bytes();
                    let Some(patch_at) = biz_msg_idr_tail(&xml) else { continue };
                    if memchr::memmem::find(&xml, BOUNDARY.as_bytes()).is_none() {
                        break Template { xml, patch_at };
                    }
                }
            })
            .collect();
        Templates {
            templates,
            nonce: rng.r#gen::<u64>() << 40,
            counter: AtomicU64::new(0),
            failures_reported: AtomicU64::new(0),
        }
    }

    /// A request body of `count` fresh messages for ISPB number `ispb`, and its
    /// `Content-Type`: bare XML for one, `multipart/mixed` for more.
    pub fn body(&self, ispb: usize, count: usize) -> (HeaderValue, Bytes) {
        let template = &self.templates[ispb];
        let first = self.counter.fetch_add(count as u64, Ordering::Relaxed);
        if count == 1 {
            let mut out = BytesMut::with_capacity(template.xml.len());
            self.put_message(&mut out, template, first);
            return (HeaderValue::from_static("application/xml"), out.freeze());
        }
        const PART_HEAD: &[u8] = b"\r\nContent-Type: application/xml\r\n\r\n";
        let per_part = 2 + BOUNDARY.len() + PART_HEAD.len() + template.xml.len() + 2;
        let mut out = BytesMut::with_capacity(count * per_part + BOUNDARY.len() + 6);
        for i in 0..count as u64 {
            out.put_slice(b"--");
            out.put_slice(BOUNDARY.as_bytes());
            out.put_slice(PART_HEAD);
            self.put_message(&mut out, template, first + i);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"--");
        out.put_slice(BOUNDARY.as_bytes());
        out.put_slice(b"--\r\n");
        (HeaderValue::from_static(MULTIPART_TYPE), out.freeze())
    }

    fn put_message(&self, out: &mut BytesMut, template: &Template, serial: u64) {
        let unique = self.nonce | (serial & ((1 << 40) - 1));
        out.put_slice(&template.xml[..template.patch_at]);
        out.put_slice(&base62(unique));
        out.put_slice(&template.xml[template.patch_at + UNIQUE_CHARS..]);
    }

    /// Whether this failure should still be described on stderr.
    fn report_failure(&self) -> bool {
        self.failures_reported.fetch_add(1, Ordering::Relaxed) < MAX_REPORTED_FAILURES
    }
}

/// Where the last `UNIQUE_CHARS` characters of the `BizMsgIdr` text start.
fn biz_msg_idr_tail(xml: &[u8]) -> Option<usize> {
    let open = memchr::memmem::find(xml, b"<BizMsgIdr>")? + b"<BizMsgIdr>".len();
    let close = open + memchr::memmem::find(&xml[open..], b"</BizMsgIdr>")?;
    (close - open >= UNIQUE_CHARS).then_some(close - UNIQUE_CHARS)
}

/// `n` in exactly 11 base-62 digits (62^11 > 2^64).
fn base62(mut n: u64) -> [u8; UNIQUE_CHARS] {
    let mut out = [b'0'; UNIQUE_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[derive(Deserialize)]
struct AppendReply<'a> {
    #[serde(borrow)]
    messages: Vec<Appended<'a>>,
}

#[derive(Deserialize)]
struct Appended<'a> {
    seq: u64,
    #[serde(borrow)]
    resource_id: std::borrow::Cow<'a, str>,
    duplicate: bool,
}

/// Posts batches at `--rate` messages per second in total (or as fast as possible
/// with rate 0) from `start` until `deadline` or `stop_producing`.
pub(crate) async fn run_at_rate(
    shared: Arc<Shared>,
    client: reqwest::Client,
    templates: Arc<Templates>,
    tickets: Arc<AtomicU64>,
    task: usize,
    start: Instant,
    deadline: Instant,
) {
    let batch = shared.args.batch;
    let rate = shared.args.rate;
    let stop = shared.stop_producing.clone();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let ticket = tickets.fetch_add(1, Ordering::Relaxed);
        if let Some(offset) = ticket.saturating_mul(batch as u64 * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(offset);
            if due >= deadline {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = stop.cancelled() => break,
            }
        } else if Instant::now() >= deadline {
            // Rate 0: as fast as the answers come.
            break;
        }
        let ispb = (ticket % shared.ispbs.len() as u64) as usize;
        post(&shared, &client, &templates, ispb, batch, task).await;
    }
}

/// Posts `--preload` messages to every ISPB with `--producers` concurrent requests.
pub(crate) async fn preload(shared: &Arc<Shared>, client: &reqwest::Client, templates: &Arc<Templates>) {
    let per_ispb = shared.args.preload;
    let batch = shared.args.batch;
    let rounds = per_ispb.div_ceil(batch);
    let total = (rounds * shared.ispbs.len()) as u64;
    let tickets = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for task in 0..shared.args.producers {
        let (shared, client, templates, tickets) = (shared.clone(), client.clone(), templates.clone(), tickets.clone());
        tasks.spawn(async move {
            loop {
                let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                if ticket >= total || shared.stop_producing.is_cancelled() {
                    break;
                }
                let ispb = (ticket % shared.ispbs.len() as u64) as usize;
                let round = (ticket / shared.ispbs.len() as u64) as usize;
                let count = batch.min(per_ispb - round * batch);
                post(&shared, &client, &templates, ispb, count, task).await;
            }
        });
    }
    let every = Duration::from_secs(shared.args.progress.max(1));
    let target = (per_ispb * shared.ispbs.len()) as u64;
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = tokio::time::sleep(every), if shared.args.progress > 0 => {
                eprintln!("[preload] {} of {target} messages acknowledged", shared.ledger.produced());
            }
        }
    }
}

/// Posts one request of `count` fresh messages to ISPB number `ispb`, retrying on
/// 429/5xx and transport errors (the dedupe key makes retries idempotent) until it
/// is acknowledged or producing stops.
async fn post(
    shared: &Shared,
    client: &reqwest::Client,
    templates: &Templates,
    ispb: usize,
    count: usize,
    task: usize,
) {
    let (content_type, body) = templates.body(ispb, count);
    let url = format!("{}{}", shared.internal_base, append_path(&shared.ispbs[ispb]));
    shared.producers_busy.fetch_add(1, Ordering::AcqRel);
    let posted_us = shared.now_us();
    let mut backoff = Duration::from_millis(50);
    let mut e2e = Vec::new();
    for attempt in 1.. {
        let sent_us = shared.now_us();
        let request = client.post(&url).header(CONTENT_TYPE, content_type.clone()).body(body.clone()).send();
        let answer = async {
            let response = request.await?;
            let status = response.status();
            let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            Ok::<_, reqwest::Error>((status, retry_after, response.bytes().await?))
        }
        .await;
        let done_us = shared.now_us();
        let measured = shared.measuring(done_us);
        let label = match &answer {
            Ok((status, _, text)) => answers::label(*status, text),
            Err(e) => answers::failed(transport_error_kind(e)).into(),
        };
        shared.metrics.answer(task, Role::Producer, &label, measured);
        let retry_in = match answer {
            Ok((status, _, text)) if status == StatusCode::CREATED || status == StatusCode::OK => {
                match serde_json::from_slice::<AppendReply<'_>>(&text) {
                    Ok(reply) => {
                        // A duplicate on the first attempt is someone else's message (the
                        // dedupe key was used before); on a retry it is our own earlier
                        // attempt that was stored although its answer was lost.
                        let ours = |m: &&Appended<'_>| attempt > 1 || !m.duplicate;
                        let unexpected = reply.messages.iter().filter(|m| !ours(m)).count() as u64;
                        if unexpected > 0 {
                            shared.ledger.note_unexpected_duplicates(ispb, unexpected);
                        }
                        let registered = reply.messages.iter().filter(ours).count() as u64;
                        shared.ledger.register(
                            ispb,
                            reply.messages.iter().filter(ours).map(|m| (m.seq, m.resource_id.as_ref())),
                            posted_us,
                            done_us,
                            &mut e2e,
                        );
                        shared.metrics.produce(task, done_us - sent_us, registered, &e2e, measured);
                        if reply.messages.len() != count {
                            shared.metrics.error(task, "POST answer with a wrong message count");
                        }
                    }
                    Err(e) => {
                        shared.metrics.error(task, "POST unreadable answer");
                        if templates.report_failure() {
                            eprintln!("bench: producer answer is not the expected JSON ({e})");
                        }
                    }
                }
                None
            }
            Ok((status, retry_after, text)) => {
                shared.metrics.error(task, &format!("POST {label}"));
                let retriable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if !retriable && templates.report_failure() {
                    eprintln!(
                        "bench: producer got {status}: {}",
                        String::from_utf8_lossy(&text).chars().take(300).collect::<String>()
                    );
                }
                retriable.then(|| retry_after.map_or(backoff, |s| Duration::from_secs(s).min(Duration::from_secs(2))))
            }
            Err(e) => {
                shared.metrics.error(task, &format!("POST {}", transport_error_kind(&e)));
                Some(backoff)
            }
        };
        let Some(pause) = retry_in else { break };
        if shared.stop_producing.is_cancelled() {
            shared.metrics.error(task, "POST abandoned at stop");
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(jitter(pause)) => {}
            () = shared.stop_producing.cancelled() => {
                shared.metrics.error(task, "POST abandoned at stop");
                break;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    shared.producers_busy.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_fixed_width_and_distinct() {
        assert_eq!(&base62(0), b"00000000000");
        assert_eq!(&base62(61), b"0000000000z");
        assert_eq!(&base62(62), b"00000000010");
        assert_ne!(base62(u64::MAX), base62(u64::MAX - 1));
    }
}
