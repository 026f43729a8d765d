//! Group commit: one task per shard turns concurrent proposals into few Raft
//! entries.
//!
//! Callers queue `(Command, reply)` pairs. The task takes whatever is queued (up to
//! `MAX_BATCH` commands or about `MAX_BATCH_BYTES` of message bodies, so that one
//! entry replicates within an append RPC's timeout) as ONE `Request`, hands it to Raft in queue order, and
//! answers each caller with the result at its position. Up to `MAX_IN_FLIGHT`
//! requests per shard wait for their commit at once, so batches pipeline: while one
//! is being fsynced the next one fills up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::error::ClientWriteError;
use openraft::raft::ClientWriteResult;
use storage::{Command, CommandResult};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::types::{Raft, Request, TypeConfig};

/// Most commands in one Raft entry.
pub(crate) const MAX_BATCH: usize = 512;
/// Message bytes after which a batch takes no further command (one command may
/// exceed it alone).
pub(crate) const MAX_BATCH_BYTES: usize = 4 << 20;
/// Most entries of one shard waiting for commit at once.
pub(crate) const MAX_IN_FLIGHT: usize = 2;
/// Proposals queued per shard before callers wait for room.
const QUEUE: usize = 8 * MAX_BATCH;

type Reply = oneshot::Sender<Result<CommandResult, Error>>;

struct Proposal {
    command: Command,
    reply: Reply,
}

/// What one shard's group commit did since the node started: commands proposed and
/// the Raft entries they went into (their ratio is the mean batch size).
#[derive(Debug, Default)]
pub(crate) struct ProposalStats {
    commands: AtomicU64,
    entries: AtomicU64,
}

impl ProposalStats {
    /// (commands, entries) handed to Raft so far.
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.commands.load(Ordering::Relaxed), self.entries.load(Ordering::Relaxed))
    }

    fn count(&self, commands: usize) {
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
    }
}

/// The queue into one shard's group-commit task.
pub(crate) struct Proposer {
    shard: u32,
    tx: mpsc::Sender<Proposal>,
    stats: Arc<ProposalStats>,
    /// `true` while a leader transfer holds proposals back (they wait in the queue).
    held: Arc<watch::Sender<bool>>,
}

impl Proposer {
    /// Starts the task of `shard`; it stops when `cancel` fires.
    pub(crate) fn spawn(shard: u32, raft: Raft, cancel: CancellationToken) -> (Proposer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(ProposalStats::default());
        let held = Arc::new(watch::Sender::new(false));
        let task = tokio::spawn(run(shard, raft, rx, stats.clone(), held.subscribe(), cancel));
        (Proposer { shard, tx, stats, held }, task)
    }

    /// Holds every proposal back (queued, not handed to Raft) until `release`.
    pub(crate) fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Hands proposals to Raft again.
    pub(crate) fn release(&self) {
        self.held.send_replace(false);
    }

    /// The shard's group-commit counters.
    pub(crate) fn stats(&self) -> &ProposalStats {
        &self.stats
    }

    /// Proposes `command` and waits until it is committed and applied.
    pub(crate) async fn propose(&self, command: Command) -> Result<CommandResult, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Proposal { command, reply })
            .await
            .map_err(|_| Error::Unavailable(format!("shard {} is shut down", self.shard)))?;
        answer.await.map_err(|_| Error::Unavailable(format!("shard {} stopped before answering", self.shard)))?
    }
}

async fn run(
    shard: u32,
    raft: Raft,
    mut rx: mpsc::Receiver<Proposal>,
    stats: Arc<ProposalStats>,
    mut held: watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // A proposal that did not fit the previous batch: it opens the next one.
    let mut spilled: Option<Proposal> = None;
    loop {
        // Take a slot first: while none is free, proposals pile up into a bigger batch.
        let slot = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let first = match spilled.take() {
            Some(proposal) => proposal,
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                proposal = rx.recv() => match proposal {
                    Some(proposal) => proposal,
                    None => break,
                },
            },
        };
        let mut commands = Vec::with_capacity(16);
        let mut replies = Vec::with_capacity(16);
        let mut bytes = weight(&first.command);
        commands.push(first.command);
        replies.push(first.reply);
        while commands.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(proposal) = rx.try_recv() else {
                break;
            };
            let more = weight(&proposal.command);
            if bytes + more > MAX_BATCH_BYTES {
                spilled = Some(proposal);
                break;
            }
            bytes += more;
            commands.push(proposal.command);
            replies.push(proposal.reply);
        }
        // A leader transfer in progress: wait (the batch keeps its place in order).
        let released = tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            released = held.wait_for(|held| !held) => released.is_ok(),
        };
        if !released {
            answer_all(replies, || Error::Unavailable(format!("shard {shard} is shutting down")));
            break;
        }
        let size = commands.len();
        stats.count(size);
        // Handing over here, in the loop, keeps the log in queue order.
        match raft.client_write_ff(Request { commands }).await {
            Err(fatal) => {
                tracing::warn!(shard, size, error = %fatal, "raft refused a batch");
                answer_all(replies, || Error::Unavailable(format!("shard {shard}: {fatal}")));
            }
            Ok(committed) => {
                tokio::spawn(async move {
                    let outcome = committed.await;
                    drop(slot);
                    deliver(shard, size, outcome, replies);
                });
            }
        }
    }
    rx.close();
    let unsent = spilled.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok()));
    for proposal in unsent {
        let _ = proposal.reply.send(Err(Error::Unavailable(format!("shard {shard} is shutting down"))));
    }
    tracing::debug!(shard, "proposer stopped");
}

/// Roughly how many bytes `command` adds to an entry: its message bodies.
fn weight(command: &Command) -> usize {
    match command {
        Command::Append { messages, .. } => messages.iter().map(|m| m.body.len() + 64).sum(),
        _ => 64,
    }
}

/// Sends every caller of a batch its own result, by position.
fn deliver<E: std::fmt::Display>(
    shard: u32,
    size: usize,
    outcome: Result<ClientWriteResult<TypeConfig>, E>,
    replies: Vec<Reply>,
) {
    match outcome {
        Ok(Ok(response)) => {
            tracing::trace!(shard, size, log_id = %response.log_id, "batch committed");
            let mut results = response.data.results.into_iter();
            for reply in replies {
                let result = results
                    .next()
                    .ok_or_else(|| Error::Unavailable(format!("shard {shard}: fewer results than commands")));
                // A caller that gave up waiting is no error.
                let _ = reply.send(result);
            }
        }
        Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
            answer_all(replies, || Error::NotLeader { leader: forward.leader_id });
        }
        Ok(Err(ClientWriteError::ChangeMembershipError(e))) => {
            answer_all(replies, || Error::Unavailable(format!("shard {shard}: {e}")));
        }
        Err(e) => {
            tracing::warn!(shard, size, error = %e, "raft stopped before answering a batch");
            answer_all(replies, || Error::Unavailable(format!("shard {shard} stopped: {e}")));
        }
    }
}

fn answer_all(replies: Vec<Reply>, error: impl Fn() -> Error) {
    for reply in replies {
        let _ = reply.send(Err(error()));
    }
}
