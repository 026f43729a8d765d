//! The flood (`--flood-ispb ISPB --flood-rate N`): one extra ISPB, not one of the
//! measured ones, hammered with `GET /api/v1/out/{ispb}/stream/start` at N requests
//! per second while the pullers and producers run (warmup and window), to see whether
//! one participant over its rate limit slows the others (SPEC.md §2.4).
//!
//! Open loop: request i is sent at `start + i / N` whatever became of the earlier
//! ones, over `CONNECTIONS` HTTP/2 connections (prior knowledge, one per client), so
//! that sending never waits for an answer — a stream/start that gets through the rate
//! limit opens a stream and long-polls for seconds. At most `MAX_IN_FLIGHT` requests
//! are outstanding; a request due beyond that is skipped and counted. The flood never
//! follows a `PI-Pull-Next` nor posts messages, and its answers (counted by class, for
//! the requests sent inside the measuring window) are kept apart from the ledger, the
//! latencies and the answers of the measured ISPBs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use wire::paths::stream_start_path;

use crate::answers::{self, AnswerSummary, Counts};
use crate::shared::{Shared, transport_error_kind};

/// HTTP/2 connections the flood is sent over.
pub const CONNECTIONS: usize = 2;
/// Most flood requests outstanding at once.
pub const MAX_IN_FLIGHT: usize = 1024;

/// The flood of one run: where it goes and what came back.
pub(crate) struct Flood {
    ispb: String,
    rate: u64,
    url: String,
    clients: Vec<reqwest::Client>,
    slots: Arc<Semaphore>,
    /// Requests sent inside the window, and those skipped with every slot taken.
    sent: AtomicU64,
    skipped: AtomicU64,
    /// Answers to the requests sent inside the window.
    counts: Mutex<Counts>,
}

/// The flood's part of the report.
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    pub ispb: String,
    /// Requests per second asked for.
    pub rate: u64,
    pub connections: usize,
    /// Requests sent inside the measuring window, and per second.
    pub sent: u64,
    pub sent_per_sec: f64,
    /// Requests not sent because `MAX_IN_FLIGHT` were outstanding.
    pub skipped: u64,
    /// Requests sent inside the window still unanswered when the flood stopped.
    pub unanswered: u64,
    /// `answers.rate_limited / answers.requests`.
    pub rate_limited_share: f64,
    pub answers: AnswerSummary,
}

impl Flood {
    /// The flood `args` ask for, if any (arguments already validated).
    pub fn new(shared: &Shared) -> anyhow::Result<Option<Flood>> {
        let (Some(ispb), Some(rate)) = (shared.args.flood_ispb.clone(), shared.args.flood_rate) else {
            return Ok(None);
        };
        let clients = (0..CONNECTIONS)
            .map(|_| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(shared.args.timeout))
                    .connect_timeout(Duration::from_secs(5))
                    .tcp_nodelay(true)
                    .http2_prior_knowledge()
                    .build()
                    .map_err(|e| anyhow!("bench: flood http client: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Flood {
            url: format!("{}{}", shared.public_base, stream_start_path(&ispb)),
            ispb,
            rate,
            clients,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            counts: Mutex::new(Counts::new()),
        }))
    }

    /// Sends the flood from `start` until `deadline` or `stop_producing`; requests
    /// still outstanding then are abandoned.
    pub async fn run(self: Arc<Self>, shared: Arc<Shared>, start: Instant, deadline: Instant) {
        let stop = shared.stop_producing.clone();
        let mut requests = JoinSet::new();
        for i in 0u64.. {
            let due = start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / self.rate);
            if due >= deadline {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = stop.cancelled() => break,
            }
            while requests.try_join_next().is_some() {}
            let measured = shared.measuring(shared.now_us());
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                if measured {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            if measured {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            let (flood, client) = (self.clone(), self.clients[i as usize % CONNECTIONS].clone());
            requests.spawn(async move {
                let label = match client.get(&flood.url).send().await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(body) => answers::label(status, &body).into_owned(),
                            Err(e) => answers::failed(transport_error_kind(&e)),
                        }
                    }
                    Err(e) => answers::failed(transport_error_kind(&e)),
                };
                if measured {
                    answers::count(&mut flood.counts.lock(), &label);
                }
                drop(slot);
            });
        }
        requests.abort_all();
        while requests.join_next().await.is_some() {}
    }

    /// The flood's figures over a window of `secs` seconds.
    pub fn report(&self, secs: f64) -> FloodReport {
        let answers = AnswerSummary::of(&self.counts.lock());
        let sent = self.sent.load(Ordering::Relaxed);
        FloodReport {
            ispb: self.ispb.clone(),
            rate: self.rate,
            connections: CONNECTIONS,
            sent,
            sent_per_sec: sent as f64 / secs.max(1e-9),
            skipped: self.skipped.load(Ordering::Relaxed),
            unanswered: sent.saturating_sub(answers.requests),
            rate_limited_share: if answers.requests == 0 {
                0.0
            } else {
                answers.rate_limited as f64 / answers.requests as f64
            },
            answers,
        }
    }
}
