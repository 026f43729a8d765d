//! Cost of assembling a `multipart/mixed` pull response (SPEC.md §2.2) from 1 and from
//! 10 stored ~2 KB pacs.008 messages, each part with the headers the pull handler sets
//! (`Content-Type`, `PI-ResourceId`, `Pix-Sequence`, `Pix-Message-Type`,
//! `Pix-Enqueued-At`):
//! - `render/{1,10}`: `multipart::render` alone (one exactly-sized buffer);
//! - `boundary_and_render/{1,10}`: `choose_boundary` (random token, scanned for in
//!   every body) followed by `render`, which is what `api::reply::read_response` does
//!   for every `Accept: multipart/mixed` pull that finds messages.
//!
//! Throughput is the size of the rendered body. 10 is the largest batch a pull hands out.
//!
//! Run: `cargo bench --bench multipart`

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderValue, header};
use loadgen::sample::sample_of_size;
use rand::SeedableRng;
use rand::rngs::StdRng;
use wire::clock::format_utc_ms;
use wire::headers::{PI_RESOURCE_ID, PIX_ENQUEUED_AT, PIX_MESSAGE_TYPE, PIX_SEQUENCE};
use wire::multipart::{Part, choose_boundary, render};

const ISPB: &str = "32074986";
/// Typical size of one SPI message.
const MESSAGE_BYTES: usize = 2048;

/// `count` parts as the pull handler builds them from stored messages.
fn parts(count: usize) -> Vec<Part> {
    let mut rng = StdRng::seed_from_u64(11);
    (0..count)
        .map(|i| {
            let message = sample_of_size(ISPB, MESSAGE_BYTES, &mut rng);
            let seq = 1_000_000 + i as u64;
            let header = |text: &str| HeaderValue::from_str(text).expect("generated ids are visible ASCII");
            Part {
                headers: vec![
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8")),
                    (PI_RESOURCE_ID, header(&format!("{seq:032}"))),
                    (PIX_SEQUENCE, HeaderValue::from(seq)),
                    (PIX_MESSAGE_TYPE, header(message.msg_def_idr)),
                    (PIX_ENQUEUED_AT, header(&format_utc_ms(1_750_000_000_000 + i as u64))),
                ],
                body: Bytes::from(message.body),
            }
        })
        .collect()
}

fn multipart(c: &mut Criterion) {
    let mut group = c.benchmark_group("multipart");
    for count in [1, 10] {
        let parts = parts(count);
        let boundary = choose_boundary(&parts);
        group.throughput(Throughput::Bytes(render(&parts, &boundary).len() as u64));
        group.bench_with_input(BenchmarkId::new("render", count), &parts, |b, parts| {
            b.iter(|| render(black_box(parts), black_box(&boundary)))
        });
        group.bench_with_input(BenchmarkId::new("boundary_and_render", count), &parts, |b, parts| {
            b.iter(|| {
                let boundary = choose_boundary(black_box(parts));
                render(parts, &boundary)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = multipart
}
criterion_main!(benches);
