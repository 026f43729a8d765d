//! The load tool's generated messages are what the producer API accepts: envelopes of
//! `loadgen::sample` and request bodies of `loadgen::producer` pass
//! `wire::envelope::validate_envelope`.

use loadgen::producer::Templates;
use loadgen::sample::{SampleKind, sample_message, sample_of_size};
use rand::SeedableRng;
use rand::rngs::StdRng;
use wire::multipart;

use wire::envelope::validate_envelope;

const TO: &str = "32074986";

#[test]
fn every_kind_is_a_valid_envelope() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..50 {
        for kind in SampleKind::ALL {
            let m = sample_message(kind, TO, &mut rng);
            let info = validate_envelope(m.body.as_bytes(), TO).expect("valid");
            assert_eq!(info.msg_def_idr, kind.msg_def_idr());
            assert_eq!(m.msg_def_idr, kind.msg_def_idr());
            assert_eq!(info.biz_msg_idr.as_deref(), Some(m.biz_msg_idr.as_str()));
            assert_eq!(m.biz_msg_idr.len(), 32);
            assert!(m.biz_msg_idr.starts_with("M00038166"));
        }
    }
}

#[test]
fn sized_samples_are_valid_and_within_ten_percent() {
    let mut rng = StdRng::seed_from_u64(2);
    for target in [2048, 3000, 4096, 10_000, 65_536, 1 << 20] {
        for _ in 0..5 {
            let m = sample_of_size(TO, target, &mut rng);
            let info = validate_envelope(m.body.as_bytes(), TO).expect("valid");
            assert_eq!(info.msg_def_idr, "pacs.008.spi.1.14");
            assert_eq!(m.biz_msg_idr.len(), 32);
            let len = m.body.len() as f64;
            let t = target as f64;
            assert!((t * 0.9..=t * 1.1).contains(&len), "{target}: {len}");
        }
    }
}

#[test]
fn bodies_hold_valid_envelopes_with_distinct_biz_msg_idrs() {
    let templates = Templates::new(&["B0000000".to_owned(), "B0000001".to_owned()], 2048);
    let (content_type, body) = templates.body(1, 3);
    let boundary = multipart::boundary_from_content_type(content_type.to_str().expect("ascii")).expect("boundary");
    let parts = multipart::parse(&body, &boundary, 100).expect("parses");
    assert_eq!(parts.len(), 3);
    let mut ids = Vec::new();
    for part in &parts {
        assert_eq!(part.header("content-type"), Some("application/xml"));
        let info = validate_envelope(&part.body, "B0000001").expect("valid SPI envelope");
        ids.push(info.biz_msg_idr.expect("BizMsgIdr"));
        assert!((1800..2300).contains(&part.body.len()), "about 2 KB: {}", part.body.len());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (single_type, single) = templates.body(0, 1);
    assert_eq!(single_type, "application/xml");
    let info = validate_envelope(&single, "B0000000").expect("valid");
    assert!(!ids.contains(&info.biz_msg_idr.expect("BizMsgIdr")));
}
