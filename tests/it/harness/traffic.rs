//! Producer and PSP traffic that runs while a test breaks the cluster: one producer
//! retrying through failovers, pullers following their cursors with the same token
//! until the producer stopped and a long poll came back empty, and the check that
//! every acknowledged message was delivered once, in order per stream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinHandle;

use super::answers::{Appended, pulled};
use super::client::{Api, MULTI, retry_until_created, start_path};
use super::messages::samples;
use super::timing;

/// One (seq, resource id) a stream received, in the order it received them.
pub type Received = Vec<(u64, String)>;

/// A producer and pullers of one ISPB, running until `stop`.
pub struct Traffic {
    producing: Arc<AtomicBool>,
    producer: JoinHandle<Vec<Appended>>,
    pullers: Vec<JoinHandle<Received>>,
}

impl Traffic {
    /// Starts a producer posting batches of 5 through `producer` (retrying 503s and
    /// broken connections) and one puller per entry of `pullers`, each through that
    /// node; pullers give up at `deadline`.
    pub fn start(ispb: &str, producer: Api, pullers: &[Api], deadline: Instant) -> Traffic {
        let producing = Arc::new(AtomicBool::new(true));
        let producer = {
            let (ispb, producing) = (ispb.to_owned(), producing.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                while producing.load(Ordering::Relaxed) {
                    acknowledged.extend(retry_until_created(&producer, &ispb, &samples(&ispb, 5)).await);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acknowledged
            })
        };
        let pullers = pullers
            .iter()
            .map(|api| {
                let (api, ispb, producing) = (api.clone(), ispb.to_owned(), producing.clone());
                tokio::spawn(async move { pull_until_dry(api, &ispb, producing, deadline).await })
            })
            .collect();
        Traffic { producing, producer, pullers }
    }

    /// Stops the producer, lets every puller run dry, and returns what the producer
    /// saw acknowledged and what each stream received.
    pub async fn stop(self) -> (Vec<Appended>, Vec<Received>) {
        self.producing.store(false, Ordering::Relaxed);
        let acknowledged = self.producer.await.expect("producer task");
        let mut streams = Vec::new();
        for puller in self.pullers {
            streams.push(puller.await.expect("puller task"));
        }
        (acknowledged, streams)
    }
}

/// One PSP stream: follows its cursor (retrying transient failures with the same
/// token) until `producing` is off and a long poll came back empty; returns every
/// (seq, id) it received (batches are checked ascending by `pulled`).
pub async fn pull_until_dry(api: Api, ispb: &str, producing: Arc<AtomicBool>, deadline: Instant) -> Received {
    let mut received = Vec::new();
    let start = loop {
        let response = api.get(&start_path(ispb), MULTI).await;
        if response.status().is_success() {
            break pulled(response).await;
        }
        assert!(Instant::now() < deadline, "no stream could be opened");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut page = start;
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    loop {
        for m in &page.messages {
            if seen.insert(m.seq) {
                received.push((m.seq, m.resource_id.clone()));
            }
        }
        if page.status == StatusCode::NO_CONTENT && !producing.load(Ordering::Relaxed) {
            break;
        }
        assert!(Instant::now() < deadline, "stream did not run dry in time");
        let next = page.next.clone();
        page = pulled(retry_until_ok(|| api.follow_raw(&next)).await).await;
    }
    let _ = api.delete(&page.next).await;
    received
}

/// Retries a request while the cluster answers 503 or cannot connect, for up to
/// `timing::UNAVAILABLE`.
pub async fn retry_until_ok<F, Fut>(mut send: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
{
    let deadline = Instant::now() + timing::UNAVAILABLE;
    loop {
        match send().await {
            Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => return response,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the cluster stayed unavailable for {:?}", timing::UNAVAILABLE);
        tokio::time::sleep(timing::RETRY_PAUSE).await;
    }
}

/// Every seq delivered carries one resource id whichever stream received it;
/// returns seq → id over all streams.
pub fn delivered(streams: &[Received]) -> BTreeMap<u64, String> {
    let mut all: BTreeMap<u64, String> = BTreeMap::new();
    for (seq, id) in streams.iter().flatten() {
        if let Some(previous) = all.insert(*seq, id.clone()) {
            assert_eq!(&previous, id, "seq {seq} always carries the same resource id");
        }
    }
    all
}

/// The operator's guarantee under failures: every acknowledged message was
/// delivered, each seq to one stream only (no stream expired, so nothing was handed
/// out twice), and each stream received its seqs in ascending order.
pub fn assert_delivered_once_in_order(acknowledged: &[Appended], streams: &[Received]) {
    let all = delivered(streams);
    let lost: Vec<&Appended> = acknowledged.iter().filter(|a| all.get(&a.seq) != Some(&a.resource_id)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages never delivered: {lost:?}", lost.len());
    let handed: usize = streams.iter().map(Vec::len).sum();
    assert_eq!(handed, all.len(), "a message was delivered to two streams");
    for stream in streams {
        let seqs: Vec<u64> = stream.iter().map(|(seq, _)| *seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a stream received seqs out of order: {seqs:?}");
    }
}
