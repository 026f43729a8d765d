//! One-pass, DOM-free validation of a producer's SPI envelope (SPEC.md §3): the body is
//! well-formed UTF-8 XML without a DOCTYPE, its root is `Envelope` with `AppHdr` and
//! `Document` children, `AppHdr/To/.../Id` names the ISPB of the request path and
//! `AppHdr/MsgDefIdr` is present. It also extracts what the server needs downstream
//! (`MsgDefIdr`, `BizMsgIdr`). Element names are matched by local name; prefixes and
//! namespaces are ignored. Error reasons never quote payload content.

use quick_xml::Reader;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, BytesText, Event};

/// Longest `MsgDefIdr` / `BizMsgIdr` accepted (ISO 20022 head.001 `Max35Text`).
const MAX_ID_CHARS: usize = 35;

/// What the server keeps from a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// `AppHdr/MsgDefIdr`, e.g. `pacs.008.spi.1.14`: 1–35 visible ASCII characters,
    /// safe to copy into an HTTP header.
    pub msg_def_idr: String,
    /// `AppHdr/BizMsgIdr`, when present and non-empty (trimmed).
    pub biz_msg_idr: Option<String>,
    /// The first `Id` under `AppHdr/To` (equal to the expected ISPB).
    pub to_ispb: String,
}

/// Checks `body` as an SPI envelope addressed to `expected_ispb`.
///
/// Returns the envelope's identifiers, or a short reason fit to show the producer.
pub fn validate_envelope(body: &[u8], expected_ispb: &str) -> Result<EnvelopeInfo, String> {
    let text =
        std::str::from_utf8(body).map_err(|e| format!("body is not valid UTF-8 (at byte {})", e.valid_up_to()))?;
    if let Some(at) = text.bytes().position(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return Err(format!("control character not allowed in XML at byte {at}"));
    }
    let (bom_len, xml) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (3, rest),
        None => (0, text),
    };
    let mut reader = Reader::from_str(xml);
    let mut scan = Scan::default();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e, reader.error_position() + bom_len))?;
        if matches!(event, Event::Eof) {
            break;
        }
        scan.feed(event)?;
    }
    scan.finish(expected_ispb)
}

/// The AppHdr fields whose text is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    MsgDefIdr,
    BizMsgIdr,
    ToId,
}

/// State of the single pass over the events.
#[derive(Default)]
struct Scan {
    /// Number of currently open elements.
    depth: usize,
    seen_event: bool,
    root_seen: bool,
    root_closed: bool,
    app_hdr_seen: bool,
    document_seen: bool,
    to_seen: bool,
    in_app_hdr: bool,
    in_to: bool,
    /// The field being collected and the depth its element opened at.
    capture: Option<(Field, usize)>,
    text: String,
    msg_def_idr: Option<String>,
    biz_msg_idr: Option<String>,
    to_id: Option<String>,
}

impl Scan {
    fn feed(&mut self, event: Event<'_>) -> Result<(), String> {
        let first = !self.seen_event;
        self.seen_event = true;
        match event {
            Event::Start(e) => self.open(&e, false),
            Event::Empty(e) => self.open(&e, true),
            Event::End(_) => {
                self.close();
                Ok(())
            }
            Event::Text(t) => self.text(&t),
            Event::CData(c) => {
                self.require_inside_root()?;
                let s = c.decode().map_err(|_| "CDATA is not valid UTF-8".to_string())?;
                self.collect(&s);
                Ok(())
            }
            Event::GeneralRef(r) => {
                self.require_inside_root()?;
                let ch = resolve_reference(&r)?;
                if self.capture.is_some() {
                    self.text.push(ch);
                }
                Ok(())
            }
            Event::Decl(d) => check_declaration(&d, first),
            Event::DocType(_) => Err("DOCTYPE is not allowed".to_string()),
            Event::Comment(_) | Event::PI(_) | Event::Eof => Ok(()),
        }
    }

    fn open(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), String> {
        check_attributes(e)?;
        let local = e.local_name();
        let name = local.as_ref();
        let level = self.depth;
        match level {
            0 => {
                if self.root_seen {
                    return Err("more than one root element".to_string());
                }
                self.root_seen = true;
                if name != b"Envelope" {
                    return Err("root element is not Envelope".to_string());
                }
            }
            1 => match name {
                b"AppHdr" => {
                    once(&mut self.app_hdr_seen, "AppHdr")?;
                    self.in_app_hdr = !empty;
                }
                b"Document" => once(&mut self.document_seen, "Document")?,
                _ => {}
            },
            2 if self.in_app_hdr => match name {
                b"To" => {
                    once(&mut self.to_seen, "AppHdr/To")?;
                    self.in_to = !empty;
                }
                b"MsgDefIdr" if self.msg_def_idr.is_some() => {
                    return Err("more than one AppHdr/MsgDefIdr".to_string());
                }
                b"BizMsgIdr" if self.biz_msg_idr.is_some() => {
                    return Err("more than one AppHdr/BizMsgIdr".to_string());
                }
                b"MsgDefIdr" => self.start_capture(Field::MsgDefIdr, level),
                b"BizMsgIdr" => self.start_capture(Field::BizMsgIdr, level),
                _ => {}
            },
            _ if self.in_to && name == b"Id" && self.to_id.is_none() && self.capture.is_none() => {
                self.start_capture(Field::ToId, level);
            }
            _ => {}
        }
        if empty {
            self.end_capture(level);
            if level == 0 {
                self.root_closed = true;
            }
        } else {
            self.depth += 1;
        }
        Ok(())
    }

    /// Handles an end tag; quick-xml has already checked that it matches its start tag.
    fn close(&mut self) {
        let level = self.depth.saturating_sub(1);
        self.end_capture(level);
        match level {
            0 => self.root_closed = true,
            1 => self.in_app_hdr = false,
            2 => self.in_to = false,
            _ => {}
        }
        self.depth = level;
    }

    fn text(&mut self, t: &BytesText<'_>) -> Result<(), String> {
        if self.depth == 0 {
            if !t.iter().all(u8::is_ascii_whitespace) {
                return Err(if self.root_closed {
                    "content after the root element".to_string()
                } else {
                    "text before the root element".to_string()
                });
            }
            return Ok(());
        }
        if self.capture.is_some() {
            let s = t.decode().map_err(|_| "text is not valid UTF-8".to_string())?;
            self.collect(&s);
        }
        Ok(())
    }

    fn require_inside_root(&self) -> Result<(), String> {
        if self.depth == 0 { Err("content outside the root element".to_string()) } else { Ok(()) }
    }

    fn start_capture(&mut self, field: Field, level: usize) {
        self.capture = Some((field, level));
        self.text.clear();
    }

    fn collect(&mut self, s: &str) {
        if self.capture.is_some() {
            self.text.push_str(s);
        }
    }

    /// Stores the collected text when the element at `level` is the captured one.
    fn end_capture(&mut self, level: usize) {
        let Some((field, at)) = self.capture else {
            return;
        };
        if at != level {
            return;
        }
        self.capture = None;
        let value = self.text.trim().to_string();
        match field {
            Field::MsgDefIdr => self.msg_def_idr = Some(value),
            Field::BizMsgIdr => self.biz_msg_idr = Some(value),
            Field::ToId => self.to_id = Some(value),
        }
    }

    fn finish(self, expected_ispb: &str) -> Result<EnvelopeInfo, String> {
        if !self.root_seen {
            return Err("no root element".to_string());
        }
        if self.depth > 0 {
            return Err("truncated XML: element not closed at end of body".to_string());
        }
        if !self.app_hdr_seen {
            return Err("Envelope has no AppHdr child".to_string());
        }
        if !self.document_seen {
            return Err("Envelope has no Document child".to_string());
        }
        if !self.to_seen {
            return Err("AppHdr has no To".to_string());
        }
        let to_id = self.to_id.ok_or("AppHdr/To has no Id")?;
        if to_id != expected_ispb {
            return Err(format!(
                "AppHdr/To Id {} does not match path ISPB {}",
                shown_id(&to_id),
                shown_id(expected_ispb)
            ));
        }
        let msg_def_idr = self.msg_def_idr.ok_or("AppHdr has no MsgDefIdr")?;
        if msg_def_idr.is_empty() {
            return Err("AppHdr/MsgDefIdr is empty".to_string());
        }
        if msg_def_idr.len() > MAX_ID_CHARS || !msg_def_idr.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("AppHdr/MsgDefIdr is not 1 to {MAX_ID_CHARS} visible ASCII characters"));
        }
        let biz_msg_idr = self.biz_msg_idr.filter(|b| !b.is_empty());
        if let Some(biz) = &biz_msg_idr
            && (biz.chars().count() > MAX_ID_CHARS || biz.chars().any(char::is_control))
        {
            return Err(format!("AppHdr/BizMsgIdr is longer than {MAX_ID_CHARS} characters or has control characters"));
        }
        Ok(EnvelopeInfo { msg_def_idr, biz_msg_idr, to_ispb: to_id })
    }
}

/// Marks a child that may occur only once.
fn once(seen: &mut bool, what: &str) -> Result<(), String> {
    if std::mem::replace(seen, true) { Err(format!("more than one {what}")) } else { Ok(()) }
}

/// Checks an element's attributes for syntax, duplicates and bad references.
fn check_attributes(e: &BytesStart<'_>) -> Result<(), String> {
    for attr in e.attributes() {
        let attr = attr.map_err(|_| "malformed XML: malformed attribute".to_string())?;
        if memchr::memchr(b'<', &attr.value).is_some() {
            return Err("malformed XML: '<' in attribute value".to_string());
        }
        if memchr::memchr(b'&', &attr.value).is_some() {
            attr.unescape_value().map_err(|_| "malformed XML: bad reference in attribute value".to_string())?;
        }
    }
    Ok(())
}

/// An XML declaration must come first and may only name UTF-8.
fn check_declaration(d: &BytesDecl<'_>, first: bool) -> Result<(), String> {
    if !first {
        return Err("XML declaration is not at the start of the body".to_string());
    }
    d.version().map_err(|_| "XML declaration has no version".to_string())?;
    match d.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case(b"UTF-8") => Ok(()),
        Some(_) => Err("XML declaration names an encoding other than UTF-8".to_string()),
    }
}

/// Resolves `&name;` / `&#n;`: only the five predefined entities exist without a DTD.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, String> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(ch)) => Ok(ch),
            _ => Err("malformed XML: invalid character reference".to_string()),
        };
    }
    match &**r {
        b"amp" => Ok('&'),
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"apos" => Ok('\''),
        b"quot" => Ok('"'),
        _ => Err("malformed XML: undefined entity reference".to_string()),
    }
}

/// An id as shown in an error: verbatim when short and plain, else only its length.
fn shown_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic()) {
        id.to_string()
    } else {
        format!("({} characters)", id.chars().count())
    }
}

/// Turns a quick-xml error into a reason that names the problem, not the content.
fn malformed(err: &XmlError, at: u64) -> String {
    let what = match err {
        XmlError::Syntax(s) => match s {
            SyntaxError::InvalidBangMarkup => "invalid markup after '<!'",
            SyntaxError::UnclosedPIOrXmlDecl => "unclosed processing instruction",
            SyntaxError::UnclosedComment => "unclosed comment",
            SyntaxError::UnclosedDoctype => "unclosed DOCTYPE",
            SyntaxError::UnclosedCData => "unclosed CDATA section",
            SyntaxError::UnclosedTag => "unclosed tag",
        },
        XmlError::IllFormed(i) => match i {
            IllFormedError::MismatchedEndTag { .. } => "end tag does not match start tag",
            IllFormedError::UnmatchedEndTag(_) => "end tag without start tag",
            IllFormedError::UnclosedReference => "unterminated reference",
            IllFormedError::MissingDeclVersion(_) => "XML declaration has no version",
            IllFormedError::MissingDoctypeName => "DOCTYPE without name",
            _ => "ill-formed XML",
        },
        XmlError::InvalidAttr(_) => "malformed attribute",
        XmlError::Escape(_) => "invalid reference",
        _ => "unreadable XML",
    };
    format!("malformed XML at byte {at}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISPB: &str = "32074986";

    fn envelope(app_hdr_inner: &str, document: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="https://www.bcb.gov.br/pi/pacs.008/1.14"><AppHdr>{app_hdr_inner}</AppHdr>{document}</Envelope>"#
        )
    }

    fn good_hdr() -> String {
        "<Fr><FIId><FinInstnId><Othr><Id>00038166</Id></Othr></FinInstnId></FIId></Fr>\
         <To><FIId><FinInstnId><Othr><Id>32074986</Id></Othr></FinInstnId></FIId></To>\
         <BizMsgIdr>M00038166202611270818abcdefghijk</BizMsgIdr>\
         <MsgDefIdr>pacs.008.spi.1.14</MsgDefIdr><CreDt>2026-11-27T08:18:00Z</CreDt>"
            .to_string()
    }

    const DOC: &str = "<Document><FIToFICstmrCdtTrf><Id>99999999</Id></FIToFICstmrCdtTrf></Document>";

    fn check(xml: &str) -> Result<EnvelopeInfo, String> {
        validate_envelope(xml.as_bytes(), ISPB)
    }

    fn err(xml: &str) -> String {
        match check(xml) {
            Ok(info) => panic!("accepted: {info:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn valid_envelope_passes() {
        let info = check(&envelope(&good_hdr(), DOC)).expect("valid");
        assert_eq!(info.msg_def_idr, "pacs.008.spi.1.14");
        assert_eq!(info.biz_msg_idr.as_deref(), Some("M00038166202611270818abcdefghijk"));
        assert_eq!(info.to_ispb, ISPB);
    }

    #[test]
    fn prefixes_bom_comments_and_references_are_accepted() {
        let xml = "\u{feff}<?xml version='1.0'?><!-- head --><h:Envelope xmlns:h='urn:x'>\
            <h:AppHdr><h:To><h:FIId><h:FinInstnId><h:Othr><h:Id> 3207&#52;986 </h:Id>\
            </h:Othr></h:FinInstnId></h:FIId></h:To><h:MsgDefIdr>pacs.002.spi.1.15</h:MsgDefIdr>\
            </h:AppHdr><h:Document a=\"x &amp; y\"><![CDATA[<raw>]]>A &lt; B</h:Document>\
            </h:Envelope>\n<?pi x?><!-- tail -->\n";
        let info = check(xml).expect("valid");
        assert_eq!(info.to_ispb, ISPB);
        assert_eq!(info.msg_def_idr, "pacs.002.spi.1.15");
        assert_eq!(info.biz_msg_idr, None);
    }

    #[test]
    fn first_id_under_to_is_used() {
        let hdr = "<To><Othr><Id>32074986</Id><Id>11111111</Id></Othr></To><MsgDefIdr>x</MsgDefIdr>";
        assert_eq!(check(&envelope(hdr, DOC)).expect("valid").to_ispb, ISPB);
    }

    #[test]
    fn each_rule_has_its_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("<Root><AppHdr/><Document/></Root>".to_string(), "root element is not Envelope"),
            (format!("<Envelope>{DOC}</Envelope>"), "no AppHdr"),
            (envelope(&good_hdr(), ""), "no Document"),
            (format!("<Envelope><Document/><X><AppHdr>{}</AppHdr></X></Envelope>", good_hdr()), "no AppHdr"),
            (envelope("<MsgDefIdr>x</MsgDefIdr>", DOC), "AppHdr has no To"),
            (envelope("<To><Nm>x</Nm></To><MsgDefIdr>x</MsgDefIdr>", DOC), "To has no Id"),
            (envelope(&good_hdr().replace("<MsgDefIdr>pacs.008.spi.1.14</MsgDefIdr>", ""), DOC), "no MsgDefIdr"),
            (envelope(&good_hdr().replace("pacs.008.spi.1.14", " "), DOC), "MsgDefIdr is empty"),
            (envelope(&good_hdr().replace("pacs.008.spi.1.14", "pacs 008"), DOC), "visible ASCII"),
            (
                envelope(&good_hdr().replace("M00038166202611270818abcdefghijk", &"M".repeat(36)), DOC),
                "BizMsgIdr is longer",
            ),
            (format!("<Envelope><AppHdr>{}</AppHdr><AppHdr/>{DOC}</Envelope>", good_hdr()), "more than one AppHdr"),
            (envelope(&good_hdr(), &format!("{DOC}{DOC}")), "more than one Document"),
        ];
        for (xml, reason) in cases {
            let e = err(&xml);
            assert!(e.contains(reason), "{e:?} lacks {reason:?}");
        }
    }

    #[test]
    fn ispb_mismatch_names_both_ids() {
        let xml = envelope(&good_hdr(), DOC);
        let e = validate_envelope(xml.as_bytes(), "87654321").expect_err("mismatch");
        assert_eq!(e, "AppHdr/To Id 32074986 does not match path ISPB 87654321");
    }

    #[test]
    fn long_mismatching_id_is_not_echoed() {
        let long = "9".repeat(500);
        let xml = envelope(&good_hdr().replace(">32074986<", &format!(">{long}<")), DOC);
        let e = err(&xml);
        assert!(e.contains("(500 characters)") && !e.contains(&long), "{e}");
    }

    #[test]
    fn malformed_documents_are_rejected() {
        let good = envelope(&good_hdr(), DOC);
        let cut = &good[..good.len() - 20];
        let cases: Vec<(String, &str)> = vec![
            (cut.to_string(), "malformed XML"),
            (good.replace("</Envelope>", ""), "truncated XML"),
            (format!("{good}<Envelope/>"), "more than one root element"),
            (format!("{good} trailing"), "content after the root element"),
            (format!("junk {good}"), "text before the root element"),
            (format!("{good}&amp;"), "outside the root element"),
            (good.replace("</AppHdr>", "</AppHdrX>"), "end tag does not match"),
            (format!("{good}</Extra>"), "end tag without start tag"),
            (
                good.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "<!DOCTYPE Envelope>"),
                "DOCTYPE is not allowed",
            ),
            (
                good.replace(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                    "<!DOCTYPE Envelope [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
                )
                .replace("<CreDt>", "<CreDt>&e;"),
                "DOCTYPE is not allowed",
            ),
            (good.replace("<CreDt>", "<CreDt>&e;"), "undefined entity"),
            (good.replace("<CreDt>", "<CreDt>&#0;"), "invalid character reference"),
            (good.replace("<Document>", "<Document a=1>"), "malformed attribute"),
            (good.replace("<Document>", "<Document a='1' a='2'>"), "malformed attribute"),
            (good.replace("<Document>", "<Document a='&x;'>"), "bad reference"),
            (format!(" {good}"), "not at the start"),
            (good.replace("UTF-8", "ISO-8859-1"), "encoding other than UTF-8"),
            (good.replace("<CreDt>", "<CreDt>\u{1}"), "control character"),
            (String::new(), "no root element"),
            ("   <!-- nothing -->".to_string(), "no root element"),
        ];
        for (xml, reason) in cases {
            let e = err(&xml);
            assert!(e.contains(reason), "{e:?} lacks {reason:?}");
        }
    }

    #[test]
    fn non_utf8_is_rejected() {
        let mut body = envelope(&good_hdr(), DOC).into_bytes();
        body.extend_from_slice(&[0xC3, 0x28]);
        let e = validate_envelope(&body, ISPB).expect_err("not UTF-8");
        assert!(e.starts_with("body is not valid UTF-8"), "{e}");
    }

    #[test]
    fn errors_do_not_quote_payload() {
        let secret = "SECRETPAYLOAD";
        let xml = envelope(&good_hdr(), &format!("<Document><{secret}></Wrong></Document>"));
        assert!(!err(&xml).contains(secret));
    }
}
