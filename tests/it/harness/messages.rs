//! Messages the tests send: the participants, SPI envelopes (from the server's
//! sample generator or written here independently) and producer request bodies.

use rand::{Rng, SeedableRng};

/// The ISPB most tests pull for.
pub const ISPB: &str = "32074986";
/// A second participant.
pub const OTHER_ISPB: &str = "99999A03";

/// Realistic SPI envelopes for `ispb` from the server's own sample generator, mixed
/// kinds, each with a fresh BizMsgIdr.
pub fn samples(ispb: &str, n: usize) -> Vec<String> {
    use loadgen::sample::{SampleKind, sample_message};
    let mut rng = rand::rngs::StdRng::from_entropy();
    (0..n)
        .map(|i| sample_message(SampleKind::ALL[i % SampleKind::ALL.len()], ispb, &mut rng).body.to_string())
        .collect()
}

/// A BizMsgIdr nobody used before (≤ 35 characters).
pub fn unique_biz() -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..30).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
    format!("M{tail}")
}

/// An SPI envelope addressed to `to`, written here independently of the server.
pub fn envelope(to: &str, biz: &str, msg_type: &str, document_inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Envelope xmlns=\"https://www.bcb.gov.br/pi/pacs.008/1.14\"><AppHdr>\
         <Fr><FIId><FinInstnId><Othr><Id>00038166</Id></Othr></FinInstnId></FIId></Fr>\
         <To><FIId><FinInstnId><Othr><Id>{to}</Id></Othr></FinInstnId></FIId></To>\
         <BizMsgIdr>{biz}</BizMsgIdr><MsgDefIdr>{msg_type}</MsgDefIdr><CreDt>2026-11-27T08:18:00Z</CreDt>\
         </AppHdr><Document><FIToFICstmrCdtTrf>{document_inner}</FIToFICstmrCdtTrf></Document></Envelope>"
    )
}

/// A valid pacs.008 envelope for `to` with a fresh BizMsgIdr.
pub fn message(to: &str) -> String {
    envelope(to, &unique_biz(), "pacs.008.spi.1.14", "<GrpHdr><MsgId>x</MsgId></GrpHdr>")
}

/// `n` distinct valid envelopes for `to`.
pub fn messages(to: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| message(to)).collect()
}

/// One message of a producer `multipart/mixed` request.
#[derive(Clone, Debug)]
pub struct OutPart {
    pub body: Vec<u8>,
    pub resource_id: Option<String>,
    pub content_type: Option<String>,
}

impl OutPart {
    pub fn xml(body: impl Into<Vec<u8>>) -> OutPart {
        OutPart { body: body.into(), resource_id: None, content_type: Some("application/xml".into()) }
    }

    pub fn with_id(mut self, id: &str) -> OutPart {
        self.resource_id = Some(id.to_owned());
        self
    }
}

/// Renders a producer multipart body with a boundary of our own.
pub fn multipart_body(parts: &[OutPart]) -> (String, Vec<u8>) {
    let boundary = format!("it-boundary-{:016x}", rand::thread_rng().r#gen::<u64>());
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(ct) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        if let Some(id) = &part.resource_id {
            body.extend_from_slice(format!("PI-ResourceId: {id}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary=\"{boundary}\""), body)
}
