//! `envelope_validate`: validating any body against any expected ISPB never panics,
//! gives the same answer twice, and what it accepts is addressed to that ISPB and
//! carries identifiers safe to copy into a header. A leading byte-order mark changes
//! nothing.
//!
//! Input layout: bytes 0..8 are the expected ISPB (lossily decoded), the rest the body.

use crate::envelope::validate_envelope;

/// Longest `MsgDefIdr` / `BizMsgIdr` the validator may accept.
const MAX_ID_CHARS: usize = 35;

/// Checks one fuzz input; panics when the property does not hold.
pub fn check_validate(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (ispb, body) = data.split_at(8);
    let expected = String::from_utf8_lossy(ispb);
    let verdict = validate_envelope(body, &expected);
    assert_eq!(verdict, validate_envelope(body, &expected), "validation is deterministic");
    let Ok(info) = verdict else { return };
    assert_eq!(info.to_ispb, expected, "an accepted envelope is addressed to the expected ISPB");
    let id = &info.msg_def_idr;
    assert!((1..=MAX_ID_CHARS).contains(&id.len()), "MsgDefIdr length {}", id.len());
    assert!(id.bytes().all(|b| b.is_ascii_graphic()), "MsgDefIdr is visible ASCII");
    if let Some(biz) = &info.biz_msg_idr {
        assert!(!biz.is_empty() && biz.chars().count() <= MAX_ID_CHARS, "BizMsgIdr length");
        assert!(!biz.chars().any(char::is_control), "BizMsgIdr has no control characters");
    }
    if !body.starts_with("\u{feff}".as_bytes()) {
        let with_bom = [&b"\xef\xbb\xbf"[..], body].concat();
        assert_eq!(validate_envelope(&with_bom, &expected).as_ref(), Ok(&info), "a BOM changes nothing");
    }
}
