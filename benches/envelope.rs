//! Cost of `wire::envelope::validate_envelope`, the one-pass check every producer message goes
//! through before it is appended (`POST /internal/v1/out/{ispb}/msgs`, SPEC.md §3):
//! UTF-8 and control-character scan, quick-xml event walk, `AppHdr/To` ISPB match and
//! extraction of `MsgDefIdr`/`BizMsgIdr`.
//! - `pacs008_2k`: a ~2 KB pacs.008 from `sample::sample_of_size` (the typical message);
//! - `pacs002_20k`: a ~20 KB pacs.002: a `sample::sample_message` pacs.002 whose
//!   `TxInfAndSts` entries are repeated until the body reaches 20 KB (the generator has
//!   no sized pacs.002, so the bench grows one; it is checked to still validate).
//!
//! Throughput is the body size.
//!
//! Run: `cargo bench --bench envelope`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loadgen::sample::{SampleKind, sample_message, sample_of_size};
use rand::SeedableRng;
use rand::rngs::StdRng;
use wire::envelope::validate_envelope;

const ISPB: &str = "32074986";

/// A pacs.002 of at least `min_bytes`, made by repeating the transaction statuses of a
/// generated one inside its `FIToFIPmtStsRpt`.
fn large_pacs002(min_bytes: usize, rng: &mut StdRng) -> String {
    let body = sample_message(SampleKind::Pacs002, ISPB, rng).body;
    let first = body.find("<TxInfAndSts>").expect("a generated pacs.002 has a TxInfAndSts");
    let end = body.find("</FIToFIPmtStsRpt>").expect("a generated pacs.002 closes FIToFIPmtStsRpt");
    let statuses = &body[first..end];
    let copies = min_bytes.saturating_sub(body.len()).div_ceil(statuses.len());
    let mut out = String::with_capacity(body.len() + copies * statuses.len());
    out.push_str(&body[..end]);
    for _ in 0..copies {
        out.push_str(statuses);
    }
    out.push_str(&body[end..]);
    out
}

fn envelope(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(5);
    let inputs = [
        ("pacs008_2k", sample_of_size(ISPB, 2048, &mut rng).body),
        ("pacs002_20k", large_pacs002(20 * 1024, &mut rng)),
    ];
    let mut group = c.benchmark_group("envelope");
    for (name, body) in &inputs {
        let info = validate_envelope(body.as_bytes(), ISPB);
        assert!(info.is_ok(), "{name} must be a valid envelope: {info:?}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| b.iter(|| validate_envelope(black_box(body.as_bytes()), black_box(ISPB))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = envelope
}
criterion_main!(benches);
