//! The harness's own checks must bite: each is shown a broken input once.

use super::answers::{check_pull_next, check_slots, element_text, is_utc_millis};
use super::multipart::parse_multipart;

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
