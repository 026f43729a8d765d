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

/// Why a producer message is not an acceptable SPI envelope. The texts are shown to
/// the producer (422 `invalidMessage`): they name the problem, never payload content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("control character not allowed in XML at byte {at}")]
    ControlCharacter { at: usize },
    /// quick-xml refused the syntax at byte `at`.
    #[error("malformed XML at byte {at}: {what}")]
    Syntax { at: u64, what: &'static str },
    /// A reference or attribute that is not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(&'static str),
    #[error("{0} is not valid UTF-8")]
    Undecodable(&'static str),
    /// The XML declaration is misplaced, incomplete or names another encoding.
    #[error("XML declaration {0}")]
    Declaration(&'static str),
    #[error("DOCTYPE is not allowed")]
    DocType,
    #[error("no root element")]
    NoRoot,
    #[error("more than one root element")]
    MultipleRoots,
    #[error("root element is not Envelope")]
    RootNotEnvelope,
    #[error("text before the root element")]
    TextBeforeRoot,
    #[error("content after the root element")]
    ContentAfterRoot,
    #[error("content outside the root element")]
    ContentOutsideRoot,
    #[error("truncated XML: element not closed at end of body")]
    Truncated,
    /// A child that may occur once occurs again (`AppHdr`, `Document`, `AppHdr/To`, …).
    #[error("more than one {0}")]
    Duplicate(&'static str),
    #[error("Envelope has no {0} child")]
    MissingChild(&'static str),
    /// A required `AppHdr` part is missing (`To`, `To/Id`, `MsgDefIdr`).
    #[error("{0}")]
    MissingHeader(&'static str),
    #[error("AppHdr/To Id {found} does not match path ISPB {expected}")]
    WrongRecipient { found: String, expected: String },
    #[error("AppHdr/MsgDefIdr is empty")]
    EmptyMsgDefIdr,
    #[error("AppHdr/MsgDefIdr is not 1 to {MAX_ID_CHARS} visible ASCII characters")]
    BadMsgDefIdr,
    #[error("AppHdr/BizMsgIdr is longer than {MAX_ID_CHARS} characters or has control characters")]
    BadBizMsgIdr,
}

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
pub fn validate_envelope(body: &[u8], expected_ispb: &str) -> Result<EnvelopeInfo, EnvelopeError> {
    let text = std::str::from_utf8(body).map_err(|e| EnvelopeError::NotUtf8 { at: e.valid_up_to() })?;
    if let Some(at) = text.bytes().position(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return Err(EnvelopeError::ControlCharacter { at });
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
    fn feed(&mut self, event: Event<'_>) -> Result<(), EnvelopeError> {
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
                let s = c.decode().map_err(|_| EnvelopeError::Undecodable("CDATA"))?;
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
            Event::DocType(_) => Err(EnvelopeError::DocType),
            Event::Comment(_) | Event::PI(_) | Event::Eof => Ok(()),
        }
    }

    fn open(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), EnvelopeError> {
        check_attributes(e)?;
        let local = e.local_name();
        let name = local.as_ref();
        let level = self.depth;
        match level {
            0 => {
                if self.root_seen {
                    return Err(EnvelopeError::MultipleRoots);
                }
                self.root_seen = true;
                if name != b"Envelope" {
                    return Err(EnvelopeError::RootNotEnvelope);
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
                    return Err(EnvelopeError::Duplicate("AppHdr/MsgDefIdr"));
                }
                b"BizMsgIdr" if self.biz_msg_idr.is_some() => {
                    return Err(EnvelopeError::Duplicate("AppHdr/BizMsgIdr"));
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

    fn text(&mut self, t: &BytesText<'_>) -> Result<(), EnvelopeError> {
        if self.depth == 0 {
            if !t.iter().all(u8::is_ascii_whitespace) {
                return Err(if self.root_closed {
                    EnvelopeError::ContentAfterRoot
                } else {
                    EnvelopeError::TextBeforeRoot
                });
            }
            return Ok(());
        }
        if self.capture.is_some() {
            let s = t.decode().map_err(|_| EnvelopeError::Undecodable("text"))?;
            self.collect(&s);
        }
        Ok(())
    }

    fn require_inside_root(&self) -> Result<(), EnvelopeError> {
        if self.depth == 0 { Err(EnvelopeError::ContentOutsideRoot) } else { Ok(()) }
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

    fn finish(self, expected_ispb: &str) -> Result<EnvelopeInfo, EnvelopeError> {
        if !self.root_seen {
            return Err(EnvelopeError::NoRoot);
        }
        if self.depth > 0 {
            return Err(EnvelopeError::Truncated);
        }
        if !self.app_hdr_seen {
            return Err(EnvelopeError::MissingChild("AppHdr"));
        }
        if !self.document_seen {
            return Err(EnvelopeError::MissingChild("Document"));
        }
        if !self.to_seen {
            return Err(EnvelopeError::MissingHeader("AppHdr has no To"));
        }
        let to_id = self.to_id.ok_or(EnvelopeError::MissingHeader("AppHdr/To has no Id"))?;
        if to_id != expected_ispb {
            return Err(EnvelopeError::WrongRecipient { found: shown_id(&to_id), expected: shown_id(expected_ispb) });
        }
        let msg_def_idr = self.msg_def_idr.ok_or(EnvelopeError::MissingHeader("AppHdr has no MsgDefIdr"))?;
        if msg_def_idr.is_empty() {
            return Err(EnvelopeError::EmptyMsgDefIdr);
        }
        if msg_def_idr.len() > MAX_ID_CHARS || !msg_def_idr.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EnvelopeError::BadMsgDefIdr);
        }
        let biz_msg_idr = self.biz_msg_idr.filter(|b| !b.is_empty());
        if let Some(biz) = &biz_msg_idr
            && (biz.chars().count() > MAX_ID_CHARS || biz.chars().any(char::is_control))
        {
            return Err(EnvelopeError::BadBizMsgIdr);
        }
        Ok(EnvelopeInfo { msg_def_idr, biz_msg_idr, to_ispb: to_id })
    }
}

/// Marks a child that may occur only once.
fn once(seen: &mut bool, what: &'static str) -> Result<(), EnvelopeError> {
    if std::mem::replace(seen, true) { Err(EnvelopeError::Duplicate(what)) } else { Ok(()) }
}

/// Checks an element's attributes for syntax, duplicates and bad references.
fn check_attributes(e: &BytesStart<'_>) -> Result<(), EnvelopeError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|_| EnvelopeError::Malformed("malformed attribute"))?;
        if memchr::memchr(b'<', &attr.value).is_some() {
            return Err(EnvelopeError::Malformed("'<' in attribute value"));
        }
        if memchr::memchr(b'&', &attr.value).is_some() {
            attr.unescape_value().map_err(|_| EnvelopeError::Malformed("bad reference in attribute value"))?;
        }
    }
    Ok(())
}

/// An XML declaration must come first and may only name UTF-8.
fn check_declaration(d: &BytesDecl<'_>, first: bool) -> Result<(), EnvelopeError> {
    if !first {
        return Err(EnvelopeError::Declaration("is not at the start of the body"));
    }
    d.version().map_err(|_| EnvelopeError::Declaration("has no version"))?;
    match d.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case(b"UTF-8") => Ok(()),
        Some(_) => Err(EnvelopeError::Declaration("names an encoding other than UTF-8")),
    }
}

/// Resolves `&name;` / `&#n;`: only the five predefined entities exist without a DTD.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, EnvelopeError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(ch)) => Ok(ch),
            _ => Err(EnvelopeError::Malformed("invalid character reference")),
        };
    }
    match &**r {
        b"amp" => Ok('&'),
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"apos" => Ok('\''),
        b"quot" => Ok('"'),
        _ => Err(EnvelopeError::Malformed("undefined entity reference")),
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
fn malformed(err: &XmlError, at: u64) -> EnvelopeError {
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
    EnvelopeError::Syntax { at, what }
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
        validate_envelope(xml.as_bytes(), ISPB).map_err(|e| e.to_string())
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
        let e = validate_envelope(xml.as_bytes(), "87654321").expect_err("mismatch").to_string();
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
        let e = validate_envelope(&body, ISPB).expect_err("not UTF-8").to_string();
        assert!(e.starts_with("body is not valid UTF-8"), "{e}");
    }

    #[test]
    fn errors_do_not_quote_payload() {
        let secret = "SECRETPAYLOAD";
        let xml = envelope(&good_hdr(), &format!("<Document><{secret}></Wrong></Document>"));
        assert!(!err(&xml).contains(secret));
    }
}
