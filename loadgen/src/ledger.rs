//! The correctness checker: every message produced (seq and resource id from the
//! producer's 201 answer) and every message delivered (per puller, per batch), per
//! ISPB, checked against SPEC.md §2.3:
//!
//! - loss: a produced message never delivered — judged only when the run drained; in a
//!   fixed-duration run it is "undelivered at end";
//! - double outstanding: a message delivered to one stream while another stream holds
//!   it (a stream holds its last batch from delivery until it sends its next request
//!   or its DELETE, which confirm it);
//! - order: seqs ascend within a batch, and a stream's first deliveries ascend across
//!   its batches; redeliveries (an id delivered before) are exempt, and after a lost
//!   response on the ISPB (a request that failed in flight) an out-of-order first
//!   delivery is counted as excused, not as a violation;
//! - identity: one seq always carries one resource id, and one id one seq;
//! - seq gaps (drained runs): every seq between the lowest and highest produced in the
//!   run was delivered;
//! - malformed answers: a 200 the puller could not read.
//!
//! Deliveries may arrive before the producer's answer does (the server wakes long polls
//! when the append is applied, before it answers the POST), so either side may create
//! a seq's entry and the other completes it. One mutex per ISPB; the hot paths take it
//! once per batch and allocate only when a seq is first seen.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// Examples of violations kept for the report.
const MAX_EXAMPLES: usize = 20;
/// No stream holds the message.
const NOBODY: u16 = u16::MAX;
/// Not known (time or holder).
const NEVER: u64 = u64::MAX;

/// One message of a delivered batch: its seq and the bytes of its `PI-ResourceId`.
#[derive(Clone, Copy, Debug)]
pub struct Delivered<'a> {
    pub seq: u64,
    pub id: &'a [u8],
}

/// What a delivered batch was, as the metrics need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliverOutcome {
    /// Messages received for the first time.
    pub first: u32,
    /// Messages received again (same id as an earlier delivery).
    pub redelivered: u32,
    /// Some message of the batch was acknowledged to the producer (or delivered
    /// before) by the time the pull was sent: the server had it ready and owed an
    /// answer without waiting.
    pub ready: bool,
}

/// The ledger of a run.
pub struct Ledger {
    names: Vec<String>,
    books: Vec<Mutex<Book>>,
    /// Produced messages not yet delivered (the drain condition).
    undelivered: AtomicI64,
    produced: AtomicU64,
    examples: Mutex<Vec<String>>,
}

/// One ISPB's book.
#[derive(Default)]
struct Book {
    entries: HashMap<u64, Entry, FastHash>,
    /// Hash of a produced resource id → its seq (to catch one id under two seqs).
    ids: HashMap<u64, u64, FastHash>,
    streams: Vec<StreamTrack>,
    produced: u64,
    min_produced: u64,
    max_produced: u64,
    /// Requests of this ISPB that failed in flight (their answer may have carried
    /// messages the client never saw).
    lost_responses: u64,
    counts: Counts,
}

/// One seq's record.
struct Entry {
    /// Its resource id (from the producer, or from the first delivery).
    id: Box<str>,
    /// When the producer sent the POST that created it, µs; `NEVER` until the 201.
    posted_us: u64,
    /// When the producer received the 201, µs; `NEVER` before.
    acked_us: u64,
    /// When it was first received, µs; `NEVER` before.
    first_delivered_us: u64,
    deliveries: u32,
    /// The puller holding it unconfirmed, or `NOBODY`.
    holder: u16,
}

/// A puller's view of its current stream.
#[derive(Clone, Default)]
struct StreamTrack {
    /// Seqs of its last batch, held until its next request.
    held: Vec<u64>,
    /// Highest seq first received on the current stream.
    last_first_seq: u64,
}

/// Violation and event counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub deliveries: u64,
    pub redeliveries: u64,
    pub double_outstanding: u64,
    pub order_violations: u64,
    pub order_excused: u64,
    pub id_mismatches: u64,
    pub duplicate_ids: u64,
    pub seq_conflicts: u64,
    pub malformed: u64,
    pub lost_responses: u64,
    pub unexpected_duplicate_appends: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.deliveries += other.deliveries;
        self.redeliveries += other.redeliveries;
        self.double_outstanding += other.double_outstanding;
        self.order_violations += other.order_violations;
        self.order_excused += other.order_excused;
        self.id_mismatches += other.id_mismatches;
        self.duplicate_ids += other.duplicate_ids;
        self.seq_conflicts += other.seq_conflicts;
        self.malformed += other.malformed;
        self.lost_responses += other.lost_responses;
        self.unexpected_duplicate_appends += other.unexpected_duplicate_appends;
    }
}

/// The ledger's part of the report.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerReport {
    /// Messages produced (and acknowledged) in this run.
    pub produced: u64,
    /// Produced messages received at least once.
    pub delivered: u64,
    /// Produced messages never received.
    pub undelivered: u64,
    /// Whether `undelivered` counts as loss (the run drained, or tried to).
    pub loss_checked: bool,
    /// Received messages this run did not produce (left over from earlier runs, or
    /// appended by a request whose answer was lost).
    pub foreign: u64,
    /// Seqs between the lowest and highest produced that never showed up (drained runs).
    pub seq_gaps: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// The first violations, in words.
    pub examples: Vec<String>,
}

impl LedgerReport {
    /// Messages lost: undelivered in a run that drained (or tried to).
    pub fn lost(&self) -> u64 {
        if self.loss_checked { self.undelivered } else { 0 }
    }

    /// The violations, in words; empty when the ledger is clean.
    pub fn problems(&self) -> Vec<String> {
        let c = &self.counts;
        let mut out = Vec::new();
        let mut say = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        say(self.lost(), "messages lost (acknowledged to the producer, never delivered by the end of the drain)");
        say(c.double_outstanding, "deliveries of a message outstanding in another stream");
        say(c.order_violations, "seq order violations");
        say(c.id_mismatches, "seqs delivered with another resource id");
        say(c.duplicate_ids, "resource ids under two seqs");
        say(c.seq_conflicts, "seqs reported for two appends");
        say(c.malformed, "malformed pull answers");
        if self.loss_checked {
            say(self.seq_gaps, "seq gaps among the produced messages");
        }
        out
    }
}

impl Ledger {
    /// A ledger for the ISPBs `names`, each read by `streams` pullers.
    pub fn new(names: Vec<String>, streams: usize) -> Ledger {
        let books = names
            .iter()
            .map(|_| Mutex::new(Book { streams: vec![StreamTrack::default(); streams], ..Book::default() }))
            .collect();
        Ledger {
            names,
            books,
            undelivered: AtomicI64::new(0),
            produced: AtomicU64::new(0),
            examples: Mutex::new(Vec::new()),
        }
    }

    /// Produced messages not yet delivered.
    pub fn undelivered(&self) -> i64 {
        self.undelivered.load(Ordering::Acquire)
    }

    /// Messages registered as produced so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// Records messages the producer API acknowledged for `ispb` at `acked_us`, posted
    /// at `posted_us`. End-to-end latencies of messages that were already delivered
    /// are pushed to `e2e_us`.
    pub fn register<'a>(
        &self,
        ispb: usize,
        messages: impl IntoIterator<Item = (u64, &'a str)>,
        posted_us: u64,
        acked_us: u64,
        e2e_us: &mut Vec<u64>,
    ) {
        let mut book = self.books[ispb].lock();
        let book = &mut *book;
        let mut fresh = 0i64;
        let mut registered = 0u64;
        for (seq, id) in messages {
            registered += 1;
            let id_hash = hash_bytes(id.as_bytes());
            match book.ids.entry(id_hash) {
                MapEntry::Occupied(other) if *other.get() != seq => {
                    // The same hash under another seq: a real duplicate when the ids agree.
                    let other_seq = *other.get();
                    if book.entries.get(&other_seq).is_some_and(|e| &*e.id == id) {
                        book.counts.duplicate_ids += 1;
                        self.example(format!(
                            "{}: resource id {id} reported for seq {other_seq} and seq {seq}",
                            self.names[ispb]
                        ));
                    }
                }
                MapEntry::Occupied(_) => {}
                MapEntry::Vacant(slot) => {
                    slot.insert(seq);
                }
            }
            match book.entries.entry(seq) {
                MapEntry::Vacant(slot) => {
                    slot.insert(Entry {
                        id: id.into(),
                        posted_us,
                        acked_us,
                        first_delivered_us: NEVER,
                        deliveries: 0,
                        holder: NOBODY,
                    });
                    fresh += 1;
                }
                MapEntry::Occupied(mut slot) => {
                    let entry = slot.get_mut();
                    if entry.posted_us != NEVER {
                        book.counts.seq_conflicts += 1;
                        self.example(format!("{}: seq {seq} acknowledged for two appends", self.names[ispb]));
                        continue;
                    }
                    if *entry.id != *id {
                        book.counts.id_mismatches += 1;
                        self.example(format!(
                            "{}: seq {seq} was delivered as id {} but produced as id {id}",
                            self.names[ispb], entry.id
                        ));
                    }
                    entry.posted_us = posted_us;
                    entry.acked_us = acked_us;
                    if entry.first_delivered_us != NEVER {
                        // Delivered before the producer heard back.
                        e2e_us.push(entry.first_delivered_us.saturating_sub(posted_us));
                    } else {
                        fresh += 1;
                    }
                }
            }
            book.produced += 1;
            book.min_produced = if book.produced == 1 { seq } else { book.min_produced.min(seq) };
            book.max_produced = book.max_produced.max(seq);
        }
        self.undelivered.fetch_add(fresh, Ordering::AcqRel);
        self.produced.fetch_add(registered, Ordering::Relaxed);
    }

    /// An append answered 200 with `duplicate: true` on its first attempt: the dedupe
    /// key was already used (not counted as produced).
    pub fn note_unexpected_duplicates(&self, ispb: usize, count: u64) {
        self.books[ispb].lock().counts.unexpected_duplicate_appends += count;
    }

    /// `stream` of `ispb` is about to send its next request (or DELETE): its last batch
    /// is no longer held.
    pub fn release(&self, ispb: usize, stream: usize) {
        let mut book = self.books[ispb].lock();
        let book = &mut *book;
        let track = &mut book.streams[stream];
        for seq in track.held.drain(..) {
            if let Some(entry) = book.entries.get_mut(&seq)
                && entry.holder == stream as u16
            {
                entry.holder = NOBODY;
            }
        }
    }

    /// `stream` of `ispb` opens a new server stream (after a 410, or at the start):
    /// releases what it held and restarts its order tracking.
    pub fn restart_stream(&self, ispb: usize, stream: usize) {
        self.release(ispb, stream);
        self.books[ispb].lock().streams[stream].last_first_seq = 0;
    }

    /// A request of `ispb` failed in flight: its answer may have been lost.
    pub fn note_lost_response(&self, ispb: usize) {
        let mut book = self.books[ispb].lock();
        book.lost_responses += 1;
        book.counts.lost_responses += 1;
    }

    /// A 200 answer of `ispb` that could not be read.
    pub fn note_malformed(&self, ispb: usize, what: &str) {
        self.books[ispb].lock().counts.malformed += 1;
        self.example(format!("{}: malformed pull answer: {what}", self.names[ispb]));
    }

    /// Records a batch received by `stream` of `ispb` at `now_us` for a request sent
    /// at `sent_us`. End-to-end latencies of first deliveries of acknowledged messages
    /// are pushed to `e2e_us`.
    pub fn deliver(
        &self,
        ispb: usize,
        stream: usize,
        batch: &[Delivered<'_>],
        sent_us: u64,
        now_us: u64,
        e2e_us: &mut Vec<u64>,
    ) -> DeliverOutcome {
        let mut outcome = DeliverOutcome::default();
        let mut book = self.books[ispb].lock();
        let book = &mut *book;
        let excused = book.lost_responses > 0;
        let me = stream as u16;
        let mut previous_in_batch: Option<u64> = None;
        let mut delivered_first = 0i64;
        for message in batch {
            let seq = message.seq;
            if previous_in_batch.is_some_and(|p| p >= seq) {
                book.counts.order_violations += 1;
                self.example(format!(
                    "{}: stream {stream} got a batch whose seqs do not ascend ({} then {seq})",
                    self.names[ispb],
                    previous_in_batch.unwrap_or_default()
                ));
            }
            previous_in_batch = Some(seq);
            book.counts.deliveries += 1;
            let first = match book.entries.entry(seq) {
                MapEntry::Vacant(slot) => {
                    // Delivered before the producer's answer arrived, or not ours.
                    slot.insert(Entry {
                        id: String::from_utf8_lossy(message.id).into(),
                        posted_us: NEVER,
                        acked_us: NEVER,
                        first_delivered_us: now_us,
                        deliveries: 1,
                        holder: me,
                    });
                    true
                }
                MapEntry::Occupied(mut slot) => {
                    let entry = slot.get_mut();
                    if entry.id.as_bytes() != message.id {
                        book.counts.id_mismatches += 1;
                        self.example(format!(
                            "{}: seq {seq} delivered with id {} but known as id {}",
                            self.names[ispb],
                            String::from_utf8_lossy(message.id),
                            entry.id
                        ));
                    }
                    let first = entry.deliveries == 0;
                    outcome.ready |= entry.acked_us <= sent_us || entry.first_delivered_us <= sent_us;
                    if first {
                        entry.first_delivered_us = now_us;
                        if entry.posted_us != NEVER {
                            e2e_us.push(now_us.saturating_sub(entry.posted_us));
                            delivered_first += 1;
                        }
                    } else if entry.holder != NOBODY && entry.holder != me {
                        book.counts.double_outstanding += 1;
                        self.example(format!(
                            "{}: seq {seq} delivered to stream {stream} while outstanding in stream {}",
                            self.names[ispb], entry.holder
                        ));
                    }
                    entry.deliveries += 1;
                    entry.holder = me;
                    first
                }
            };
            let track = &mut book.streams[stream];
            if first {
                outcome.first += 1;
                if seq <= track.last_first_seq {
                    if excused {
                        book.counts.order_excused += 1;
                    } else {
                        book.counts.order_violations += 1;
                        self.example(format!(
                            "{}: stream {stream} first received seq {seq} after seq {}",
                            self.names[ispb], track.last_first_seq
                        ));
                    }
                }
                track.last_first_seq = track.last_first_seq.max(seq);
            } else {
                outcome.redelivered += 1;
                book.counts.redeliveries += 1;
            }
            track.held.push(seq);
        }
        if delivered_first > 0 {
            self.undelivered.fetch_sub(delivered_first, Ordering::AcqRel);
        }
        outcome
    }

    /// The final account; `loss_checked` when the run drained (or tried to), so that
    /// undelivered messages count as lost.
    pub fn finish(&self, loss_checked: bool) -> LedgerReport {
        let mut report = LedgerReport {
            produced: 0,
            delivered: 0,
            undelivered: 0,
            loss_checked,
            foreign: 0,
            seq_gaps: 0,
            counts: Counts::default(),
            examples: Vec::new(),
        };
        for (index, book) in self.books.iter().enumerate() {
            let book = book.lock();
            report.counts.add(&book.counts);
            let mut first_undelivered = None;
            for (seq, entry) in &book.entries {
                match (entry.posted_us != NEVER, entry.deliveries > 0) {
                    (true, true) => report.delivered += 1,
                    (true, false) => {
                        report.undelivered += 1;
                        first_undelivered = Some(first_undelivered.map_or(*seq, |s: u64| s.min(*seq)));
                    }
                    (false, _) => report.foreign += 1,
                }
            }
            report.produced += book.produced;
            if loss_checked {
                if let Some(seq) = first_undelivered {
                    self.example(format!(
                        "{}: seq {seq} (and maybe more) produced, never delivered",
                        self.names[index]
                    ));
                }
                if book.produced > 0 {
                    // Seqs in the produced span that nobody produced in this run and
                    // nobody delivered (undelivered produced ones are loss, above).
                    let gaps =
                        (book.min_produced..=book.max_produced).filter(|s| !book.entries.contains_key(s)).count();
                    report.seq_gaps += gaps as u64;
                }
            }
        }
        report.examples = self.examples.lock().clone();
        report
    }

    fn example(&self, text: String) {
        let mut examples = self.examples.lock();
        if examples.len() < MAX_EXAMPLES {
            examples.push(text);
        }
    }
}

/// FxHash-style hasher: the ledger's keys are seqs and id hashes, never attacker-chosen.
#[derive(Default, Clone, Copy)]
struct SeqHasher(u64);

type FastHash = BuildHasherDefault<SeqHasher>;

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// FNV-1a of `bytes`.
fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(streams: usize) -> Ledger {
        Ledger::new(vec!["B0000000".to_owned(), "B0000001".to_owned()], streams)
    }

    fn id(seq: u64) -> String {
        format!("id-{seq:04}")
    }

    fn produce(ledger: &Ledger, ispb: usize, seqs: std::ops::RangeInclusive<u64>) {
        let ids: Vec<(u64, String)> = seqs.map(|s| (s, id(s))).collect();
        ledger.register(ispb, ids.iter().map(|(s, i)| (*s, i.as_str())), 100, 150, &mut Vec::new());
    }

    fn deliver(ledger: &Ledger, ispb: usize, stream: usize, seqs: &[u64]) -> DeliverOutcome {
        let ids: Vec<String> = seqs.iter().map(|s| id(*s)).collect();
        let batch: Vec<Delivered<'_>> =
            seqs.iter().zip(&ids).map(|(s, i)| Delivered { seq: *s, id: i.as_bytes() }).collect();
        ledger.deliver(ispb, stream, &batch, 900, 1_000, &mut Vec::new())
    }

    #[test]
    fn a_clean_run_with_parallel_streams_is_clean() {
        let l = ledger(2);
        produce(&l, 0, 1..=30);
        assert_eq!(l.undelivered(), 30);
        deliver(&l, 0, 0, &[1, 2, 3]);
        deliver(&l, 0, 1, &[4, 5]);
        l.release(0, 0);
        deliver(&l, 0, 0, &[6, 7, 8, 9, 10]);
        l.release(0, 1);
        deliver(&l, 0, 1, &(11..=30).collect::<Vec<_>>());
        assert_eq!(l.undelivered(), 0);
        let report = l.finish(true);
        assert_eq!((report.produced, report.delivered, report.undelivered, report.foreign), (30, 30, 0, 0));
        assert!(report.problems().is_empty(), "{:?}", report.problems());
    }

    #[test]
    fn loss_is_reported_only_when_the_run_drained() {
        let l = ledger(1);
        produce(&l, 0, 1..=5);
        deliver(&l, 0, 0, &[1, 2, 3]);
        let fixed = l.finish(false);
        assert_eq!(fixed.undelivered, 2);
        assert_eq!(fixed.lost(), 0);
        assert!(fixed.problems().is_empty());
        let drained = l.finish(true);
        assert_eq!(drained.lost(), 2);
        assert_eq!(drained.problems().len(), 1, "{:?}", drained.problems());
        assert!(drained.problems()[0].contains("2 messages lost"));
    }

    #[test]
    fn delivery_while_outstanding_in_another_stream_is_a_violation() {
        let l = ledger(2);
        produce(&l, 0, 1..=3);
        deliver(&l, 0, 0, &[1, 2]);
        deliver(&l, 0, 1, &[2, 3]);
        let report = l.finish(false);
        assert_eq!(report.counts.double_outstanding, 1);
        assert!(report.problems().iter().any(|p| p.contains("outstanding in another stream")));
        assert!(
            report.examples.iter().any(|e| e.contains("seq 2 delivered to stream 1 while outstanding in stream 0"))
        );
    }

    #[test]
    fn redelivery_is_allowed_after_release_and_on_the_same_stream() {
        let l = ledger(2);
        produce(&l, 0, 1..=4);
        deliver(&l, 0, 0, &[1, 2]);
        // Idempotent retry: the same stream gets the same batch again.
        assert_eq!(deliver(&l, 0, 0, &[1, 2]), DeliverOutcome { first: 0, redelivered: 2, ready: true });
        // Stream 0 closes without confirming; its batch goes to stream 1 first.
        l.restart_stream(0, 0);
        assert_eq!(deliver(&l, 0, 1, &[1, 2, 3]), DeliverOutcome { first: 1, redelivered: 2, ready: true });
        l.release(0, 1);
        deliver(&l, 0, 0, &[4]);
        let report = l.finish(true);
        assert_eq!(report.counts.redeliveries, 4);
        assert_eq!(report.counts.deliveries, 8);
        assert!(report.problems().is_empty(), "{:?}", report.problems());
    }

    #[test]
    fn seqs_out_of_order_within_a_batch_are_a_violation() {
        let l = ledger(1);
        produce(&l, 0, 1..=3);
        deliver(&l, 0, 0, &[2, 1, 3]);
        let report = l.finish(false);
        assert_eq!(report.counts.order_violations, 2, "descending pair and the late first delivery of 1");
        assert!(report.problems().iter().any(|p| p.contains("seq order")));
    }

    #[test]
    fn first_deliveries_going_backwards_across_batches_are_a_violation_unless_a_response_was_lost() {
        let l = ledger(1);
        produce(&l, 0, 1..=6);
        deliver(&l, 0, 0, &[4, 5]);
        l.release(0, 0);
        deliver(&l, 0, 0, &[1, 2]);
        assert_eq!(l.finish(false).counts.order_violations, 2);

        let excused = ledger(1);
        produce(&excused, 1, 1..=6);
        deliver(&excused, 1, 0, &[4, 5]);
        excused.note_lost_response(1);
        excused.release(1, 0);
        deliver(&excused, 1, 0, &[1, 2]);
        let report = excused.finish(false);
        assert_eq!((report.counts.order_violations, report.counts.order_excused), (0, 2));
        assert!(report.problems().is_empty());
    }

    #[test]
    fn a_new_stream_restarts_the_order_check() {
        let l = ledger(1);
        produce(&l, 0, 1..=4);
        deliver(&l, 0, 0, &[3, 4]);
        l.restart_stream(0, 0);
        deliver(&l, 0, 0, &[1, 2]);
        // A new stream after 410: seqs 1, 2 were never delivered before, yet lower;
        // per-stream order starts again (the server may have handed them elsewhere).
        assert_eq!(l.finish(true).counts.order_violations, 0);
    }

    #[test]
    fn a_seq_delivered_with_another_id_is_a_violation_either_way_round() {
        let l = ledger(1);
        produce(&l, 0, 1..=1);
        l.deliver(0, 0, &[Delivered { seq: 1, id: b"other" }], 0, 5, &mut Vec::new());
        assert_eq!(l.finish(false).counts.id_mismatches, 1);

        // Delivered before the producer's answer, then produced under another id.
        let early = ledger(1);
        early.deliver(0, 0, &[Delivered { seq: 7, id: b"early-id" }], 0, 5, &mut Vec::new());
        early.register(0, [(7, "late-id")], 1, 1, &mut Vec::new());
        let report = early.finish(true);
        assert_eq!(report.counts.id_mismatches, 1);
        assert!(report.problems().iter().any(|p| p.contains("another resource id")));
    }

    #[test]
    fn one_id_under_two_seqs_and_one_seq_in_two_appends_are_violations() {
        let l = ledger(1);
        l.register(0, [(1, "same"), (2, "same")], 1, 1, &mut Vec::new());
        l.register(0, [(2, "again")], 1, 1, &mut Vec::new());
        let report = l.finish(false);
        assert_eq!(report.counts.duplicate_ids, 1);
        assert_eq!(report.counts.seq_conflicts, 1);
        assert_eq!(report.problems().len(), 2, "{:?}", report.problems());
    }

    #[test]
    fn delivery_before_the_producer_answer_counts_once_with_its_latency() {
        let l = ledger(1);
        l.deliver(0, 0, &[Delivered { seq: 1, id: b"a" }], 0, 900, &mut Vec::new());
        assert_eq!(l.undelivered(), 0);
        let mut e2e = Vec::new();
        l.register(0, [(1, "a"), (2, "b")], 400, 400, &mut e2e);
        assert_eq!(e2e, vec![500]);
        assert_eq!(l.undelivered(), 1);
        let mut e2e = Vec::new();
        l.deliver(0, 0, &[Delivered { seq: 2, id: b"b" }], 0, 1_000, &mut e2e);
        assert_eq!(e2e, vec![600]);
        assert_eq!(l.undelivered(), 0);
        let report = l.finish(true);
        assert_eq!((report.produced, report.delivered, report.foreign), (2, 2, 0));
        assert!(report.problems().is_empty());
    }

    #[test]
    fn messages_of_earlier_runs_are_foreign_not_violations() {
        let l = ledger(1);
        l.deliver(0, 0, &[Delivered { seq: 1, id: b"old" }], 0, 5, &mut Vec::new());
        produce(&l, 0, 2..=3);
        l.release(0, 0);
        deliver(&l, 0, 0, &[2, 3]);
        let report = l.finish(true);
        assert_eq!((report.foreign, report.produced, report.delivered, report.seq_gaps), (1, 2, 2, 0));
        assert!(report.problems().is_empty());
    }

    #[test]
    fn a_seq_never_seen_between_produced_ones_is_a_gap_in_drained_runs() {
        let l = ledger(1);
        l.register(0, [(1, "a"), (3, "c")], 1, 1, &mut Vec::new());
        l.deliver(0, 0, &[Delivered { seq: 1, id: b"a" }, Delivered { seq: 3, id: b"c" }], 0, 5, &mut Vec::new());
        assert_eq!(l.finish(false).problems().len(), 0);
        let drained = l.finish(true);
        assert_eq!(drained.seq_gaps, 1);
        assert!(drained.problems().iter().any(|p| p.contains("seq gaps")));
    }

    #[test]
    fn a_batch_is_ready_when_a_message_was_acknowledged_before_the_pull_was_sent() {
        let l = ledger(1);
        l.register(0, [(1, "a")], 100, 200, &mut Vec::new());
        // Sent before the 201 arrived: the server may rightly have waited for the commit.
        assert!(!l.deliver(0, 0, &[Delivered { seq: 1, id: b"a" }], 150, 300, &mut Vec::new()).ready);
        l.register(0, [(2, "b")], 400, 500, &mut Vec::new());
        l.release(0, 0);
        assert!(l.deliver(0, 0, &[Delivered { seq: 2, id: b"b" }], 600, 700, &mut Vec::new()).ready);
    }

    #[test]
    fn malformed_answers_fail_the_ledger() {
        let l = ledger(1);
        l.note_malformed(0, "no boundary");
        assert_eq!(l.finish(false).counts.malformed, 1);
        assert!(!l.finish(false).problems().is_empty());
    }
}
