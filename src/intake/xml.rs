//! `POST /api/tickets.xml`: osTicket's "extremely lax" XML (API.md, XML).
//!
//! Any simple value may be an attribute of the root `<ticket>` or a child
//! element, as text or CDATA. Tokenising is `quick-xml`'s; it never
//! expands entities beyond the five predefined ones and character
//! references, and we refuse any `<!DOCTYPE>` outright, so there is no
//! entity expansion and nothing is fetched. Depth and element count are
//! bounded; the body limit applies before parsing.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{
    AttachmentDraft, BodyFormat, FieldLimits, IntakeError, IntakeLimits, MessageDraft, RawValue,
    TicketDraft, charset, check_attachment, html,
};

/// Deepest element nesting accepted (`<ticket><attachments><file>` is 3).
const MAX_DEPTH: usize = 16;
/// Most elements in one document.
const MAX_ELEMENTS: usize = 10_000;

/// Decodes an XML ticket request.
pub fn parse_xml(
    body: &[u8],
    limits: &IntakeLimits,
    field_limits: &FieldLimits,
) -> Result<TicketDraft, IntakeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::EmptyBody);
    }
    let text = decode_document(body)?;
    Parser::new(&text, limits, field_limits).run()
}

/// The document as UTF-8: a byte-order mark wins, then the declaration's
/// `encoding`, then UTF-8 (XML 1.0 §4.3.3). Bytes that are not valid in
/// that encoding are a `400` like malformed JSON (XML 1.0 §4.3.3 calls
/// them a fatal error), never replaced with U+FFFD. UTF-8 is borrowed.
fn decode_document(body: &[u8]) -> Result<Cow<'_, str>, IntakeError> {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(body) {
        return decode_strict(encoding, &body[bom_len..]);
    }
    match declared_encoding(body) {
        Some(label) => {
            let encoding = charset::lookup(&label).ok_or(IntakeError::UnknownCharset {
                field: "encoding".into(),
                charset: label.clone(),
            })?;
            decode_strict(encoding, body)
        }
        None => decode_strict(encoding_rs::UTF_8, body),
    }
}

fn decode_strict<'b>(
    encoding: &'static encoding_rs::Encoding,
    bytes: &'b [u8],
) -> Result<Cow<'b, str>, IntakeError> {
    if encoding == encoding_rs::UTF_8 {
        return std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            // The valid prefix is text: the position is where it stops.
            let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
            not_in_encoding(&valid, valid.len(), encoding)
        });
    }
    if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        return Ok(text);
    }
    let (lossy, _) = encoding.decode_without_bom_handling(bytes);
    let at = lossy.find('\u{FFFD}').unwrap_or(0);
    Err(not_in_encoding(&lossy, at, encoding))
}

fn not_in_encoding(text: &str, at: usize, encoding: &'static encoding_rs::Encoding) -> IntakeError {
    let (line, column) = position(text, at);
    IntakeError::Malformed {
        format: "XML",
        line,
        column,
        message: format!("bytes that are not valid {}", encoding.name()),
    }
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>` declaration
/// (which is ASCII in every ASCII-compatible encoding).
fn declared_encoding(body: &[u8]) -> Option<String> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")? + 2;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let mut reader = Reader::from_str(decl);
    match reader.read_event() {
        Ok(Event::Decl(d)) => d.encoding().and_then(Result::ok).map(|e| e.into_owned()),
        _ => None,
    }
}

/// 1-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let upto = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = upto.matches('\n').count() + 1;
    let column = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a base64 `<file>` is decoded to: the bytes while they are
/// within the cap, and the decoded size in any case (for the 413).
#[derive(Default)]
struct Sink {
    data: Vec<u8>,
    size: u64,
}

type WriteBytes = Box<dyn FnMut(&[u8]) -> Result<(), std::convert::Infallible>>;

/// A base64 `<file>` decoded as its text arrives: no copy of the text is
/// kept, and past the size cap the bytes are counted, not kept.
struct Base64File {
    sink: Rc<RefCell<Sink>>,
    decoder: data_url::forgiving_base64::Decoder<WriteBytes, std::convert::Infallible>,
}

impl Base64File {
    /// Room for `more` decoded bytes at once (a large file is one piece
    /// of text), so the vector does not grow by doubling; never past the
    /// cap, where bytes are only counted.
    fn reserve(&self, more: u64, max_bytes: u64) {
        let mut sink = self.sink.borrow_mut();
        let want = (sink.size + more).min(max_bytes);
        if want > sink.data.len() as u64 {
            let extra = usize::try_from(want - sink.data.len() as u64).unwrap_or(0);
            sink.data.reserve_exact(extra);
        }
    }

    fn new(max_bytes: u64) -> Self {
        let sink = Rc::new(RefCell::new(Sink::default()));
        let writer = Rc::clone(&sink);
        let write: WriteBytes = Box::new(move |bytes| {
            let mut w = writer.borrow_mut();
            w.size += bytes.len() as u64;
            if w.size <= max_bytes {
                w.data.extend_from_slice(bytes);
            } else if !w.data.is_empty() {
                w.data = Vec::new();
            }
            Ok(())
        });
        Self {
            sink,
            decoder: data_url::forgiving_base64::Decoder::new(write),
        }
    }
}

/// What the element being read will become.
enum Slot {
    /// `<ticket>` itself.
    Root,
    /// A simple field (or an unknown element, which the forms will refuse).
    Field { name: String, ext: Option<String> },
    /// `<message type=…>`.
    Message { html: bool },
    /// `<attachments>`: holds `<file>` elements only.
    Attachments,
    /// `<file name type encoding>`: the text kept (plain) or decoded as it
    /// comes (base64).
    File {
        name: String,
        content_type: String,
        base64: Option<Base64File>,
    },
}

struct Open<'a> {
    slot: Slot,
    /// The element's text: borrowed from the document when it is one
    /// piece (the common case), so a large value is not copied.
    text: Cow<'a, str>,
}

struct Parser<'a> {
    text: &'a str,
    reader: Reader<&'a [u8]>,
    limits: &'a IntakeLimits,
    field_limits: &'a FieldLimits,
    draft: TicketDraft,
    stack: Vec<Open<'a>>,
    elements: usize,
    seen_root: bool,
    seen_message: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a IntakeLimits, field_limits: &'a FieldLimits) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        Self {
            text,
            reader,
            limits,
            field_limits,
            draft: TicketDraft::default(),
            stack: Vec::new(),
            elements: 0,
            seen_root: false,
            seen_message: false,
        }
    }

    fn malformed(&self, offset: u64, message: impl Into<String>) -> IntakeError {
        let (line, column) = position(self.text, usize::try_from(offset).unwrap_or(usize::MAX));
        IntakeError::Malformed {
            format: "XML",
            line,
            column,
            message: message.into(),
        }
    }

    fn run(mut self) -> Result<TicketDraft, IntakeError> {
        loop {
            let event = match self.reader.read_event() {
                Ok(e) => e,
                Err(e) => return Err(self.malformed(self.reader.error_position(), e.to_string())),
            };
            match event {
                Event::DocType(_) => {
                    return Err(IntakeError::NotATicket(
                        "XML with a DOCTYPE is refused (no DTDs, no entities)".into(),
                    ));
                }
                Event::Start(start) => self.start(&start)?,
                Event::End(_) => self.end()?,
                // Base64 is fed as it is: the decoder skips white space,
                // so the line-end normalisation (a copy of the whole text
                // when it has CRLF lines) is not needed.
                Event::Text(t) if self.in_base64_file() => self.feed_base64(t.as_bytes())?,
                Event::CData(c) if self.in_base64_file() => self.feed_base64(c.as_bytes())?,
                Event::Text(t) => self.push_text(t.xml10_content())?,
                Event::CData(c) => self.push_text(c.xml10_content())?,
                Event::GeneralRef(r) => {
                    let resolved = if r.is_char_ref() {
                        r.resolve_char_ref().ok().flatten().map(String::from)
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&r).map(str::to_string)
                    };
                    match resolved {
                        Some(s) => self.push_text(Cow::Owned(s))?,
                        None => {
                            return Err(self.malformed(
                                self.reader.buffer_position(),
                                format!("unknown entity &{};", &*r),
                            ));
                        }
                    }
                }
                Event::Empty(empty) => {
                    self.start(&empty)?;
                    self.end()?;
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !self.seen_root {
            return Err(IntakeError::NotATicket(
                "the XML body has no <ticket> element".into(),
            ));
        }
        if !self.stack.is_empty() {
            return Err(self.malformed(self.reader.buffer_position(), "unexpected end of document"));
        }
        Ok(self.draft)
    }

    /// Counts one more field value against `max_fields` (413 past it).
    fn count_field(&self) -> Result<(), IntakeError> {
        if self.draft.fields.len() >= self.field_limits.max_fields {
            return Err(IntakeError::TooManyValues {
                field: "fields".into(),
                limit: self.field_limits.max_fields,
            });
        }
        Ok(())
    }

    /// The element's attributes, at most `max_fields` of them: counted
    /// while they are read (quick-xml's duplicate check compares each
    /// attribute with every earlier one, so an unbounded list would also
    /// cost quadratic time).
    fn attrs(
        &self,
        name: &str,
        start: &BytesStart<'_>,
    ) -> Result<Vec<(String, String)>, IntakeError> {
        let mut out = Vec::new();
        for attr in start.attributes() {
            if out.len() >= self.field_limits.max_fields {
                return Err(IntakeError::TooManyValues {
                    field: format!("<{name}> attributes"),
                    limit: self.field_limits.max_fields,
                });
            }
            let attr =
                attr.map_err(|e| self.malformed(self.reader.buffer_position(), e.to_string()))?;
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| self.malformed(self.reader.buffer_position(), e.to_string()))?;
            out.push((attr.key.as_ref().to_string(), value.into_owned()));
        }
        Ok(out)
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), IntakeError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(IntakeError::TooManyValues {
                field: "elements".into(),
                limit: MAX_ELEMENTS,
            });
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(IntakeError::NotATicket(format!(
                "XML too deep (at most {MAX_DEPTH} levels)"
            )));
        }
        let name = start.name().as_ref().to_string();
        let attrs = self.attrs(&name, start)?;
        let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let slot = match self.stack.last().map(|o| &o.slot) {
            None if !self.seen_root => {
                if name != "ticket" {
                    return Err(IntakeError::NotATicket(format!(
                        "the root element must be <ticket>, not <{name}>"
                    )));
                }
                self.seen_root = true;
                // Every attribute of the root is a simple field.
                for (k, v) in attrs {
                    self.count_field()?;
                    self.draft.fields.push((k, RawValue::Str(v)));
                }
                self.stack.push(Open {
                    slot: Slot::Root,
                    text: Cow::Borrowed(""),
                });
                return Ok(());
            }
            None => {
                return Err(self.malformed(
                    self.reader.buffer_position(),
                    "only one root element is allowed",
                ));
            }
            Some(Slot::Root) => match name.as_str() {
                "message" => {
                    // A second message would silently replace the first.
                    if std::mem::replace(&mut self.seen_message, true) {
                        return Err(IntakeError::Duplicate {
                            field: "message".into(),
                        });
                    }
                    Slot::Message {
                        html: attr("type")
                            .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")),
                    }
                }
                "attachments" => Slot::Attachments,
                _ => {
                    self.count_field()?;
                    Slot::Field {
                        ext: if name == "phone" { attr("ext") } else { None },
                        name,
                    }
                }
            },
            Some(Slot::Attachments) if name == "file" => {
                // The count is checked before the file is read.
                if self.draft.attachments.len() >= self.limits.max_attachments {
                    return Err(IntakeError::TooManyAttachments {
                        count: self.draft.attachments.len() + 1,
                        limit: self.limits.max_attachments,
                    });
                }
                Slot::File {
                    name: attr("name").unwrap_or_default(),
                    content_type: attr("type")
                        .map(|t| t.trim().to_ascii_lowercase())
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| "text/plain".into()),
                    base64: attr("encoding")
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"))
                        .then(|| Base64File::new(self.limits.max_attachment_bytes)),
                }
            }
            Some(Slot::Attachments) => {
                return Err(IntakeError::WrongType {
                    field: "attachments".into(),
                    expected: "<file> elements",
                    got: "another element",
                });
            }
            Some(Slot::Field { name: parent, .. }) => {
                return Err(IntakeError::WrongType {
                    field: parent.clone(),
                    expected: "text",
                    got: "nested elements",
                });
            }
            Some(Slot::Message { .. }) => {
                return Err(IntakeError::WrongType {
                    field: "message".into(),
                    expected: "text or CDATA",
                    got: "nested elements",
                });
            }
            Some(Slot::File { name: file, .. }) => {
                return Err(IntakeError::WrongType {
                    field: file.clone(),
                    expected: "text or CDATA",
                    got: "nested elements",
                });
            }
        };
        self.stack.push(Open {
            slot,
            text: Cow::Borrowed(""),
        });
        Ok(())
    }

    fn in_base64_file(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Open {
                slot: Slot::File {
                    base64: Some(_),
                    ..
                },
                ..
            })
        )
    }

    /// Decodes a piece of a base64 `<file>` into its bytes.
    fn feed_base64(&mut self, text: &[u8]) -> Result<(), IntakeError> {
        let max = self.limits.max_attachment_bytes;
        if let Some(Open {
            slot:
                Slot::File {
                    name,
                    base64: Some(b64),
                    ..
                },
            ..
        }) = self.stack.last_mut()
        {
            b64.reserve(text.len() as u64 / 4 * 3, max);
            b64.decoder.feed(text).map_err(|_| IntakeError::BadBase64 {
                field: name.clone(),
            })?;
        }
        Ok(())
    }

    fn push_text(&mut self, s: Cow<'a, str>) -> Result<(), IntakeError> {
        if self.in_base64_file() {
            return self.feed_base64(s.as_bytes());
        }
        match self.stack.last_mut() {
            // Text between the elements of <ticket> and <attachments> is
            // not part of any value (osTicket's lax reader skips it).
            Some(Open {
                slot: Slot::Root | Slot::Attachments,
                ..
            }) => Ok(()),
            Some(open) => {
                if open.text.is_empty() {
                    open.text = s;
                } else {
                    open.text.to_mut().push_str(&s);
                }
                Ok(())
            }
            None if s.trim().is_empty() => Ok(()),
            None => Err(self.malformed(
                self.reader.buffer_position(),
                "text outside the root element",
            )),
        }
    }

    fn end(&mut self) -> Result<(), IntakeError> {
        let Some(open) = self.stack.pop() else {
            return Err(self.malformed(self.reader.buffer_position(), "unexpected end tag"));
        };
        let text = open.text.trim();
        match open.slot {
            Slot::Root => {}
            Slot::Field { name, ext } => {
                let value = match ext.map(|e| e.trim().to_string()).filter(|e| !e.is_empty()) {
                    Some(ext) if !text.is_empty() => format!("{text}X{ext}"),
                    _ => text.to_string(),
                };
                self.draft.fields.push((name, RawValue::Str(value)));
            }
            Slot::Message { html } => {
                self.draft.message = Some(if html {
                    MessageDraft {
                        body: html::sanitize(text),
                        format: BodyFormat::Html,
                    }
                } else {
                    MessageDraft {
                        body: text.to_string(),
                        format: BodyFormat::Text,
                    }
                });
            }
            Slot::Attachments => {}
            Slot::File {
                name,
                content_type,
                base64,
            } => {
                let data = match base64 {
                    Some(b64) => {
                        let sink = b64.sink;
                        b64.decoder.finish().map_err(|_| IntakeError::BadBase64 {
                            field: name.clone(),
                        })?;
                        let sink = std::mem::take(&mut *sink.borrow_mut());
                        let limit = self.limits.max_attachment_bytes;
                        if sink.size > limit {
                            return Err(IntakeError::AttachmentTooLarge {
                                name,
                                size: sink.size,
                                limit,
                            });
                        }
                        sink.data
                    }
                    None => text.as_bytes().to_vec(),
                };
                let att = AttachmentDraft {
                    name,
                    content_type,
                    data,
                    inline: false,
                    content_id: None,
                };
                check_attachment(self.limits, self.draft.attachments.len(), &att)?;
                self.draft.attachments.push(att);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_attachment_bytes: 64,
        max_attachments: 4,
    };

    fn parse(s: &str) -> Result<TicketDraft, IntakeError> {
        parse_xml(s.as_bytes(), &LIMITS, &FieldLimits::default())
    }

    fn field<'d>(d: &'d TicketDraft, name: &str) -> Option<&'d RawValue> {
        d.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn attribute_element_and_cdata_are_equivalent() {
        let forms = [
            r#"<ticket subject="Fish &amp; Chips"><message>m</message></ticket>"#,
            r#"<ticket><subject>Fish &amp; Chips</subject><message>m</message></ticket>"#,
            r#"<ticket><subject><![CDATA[Fish & Chips]]></subject><message>m</message></ticket>"#,
            "<ticket><subject>\n   Fish &#38; Chips  \n</subject><message>m</message></ticket>",
        ];
        for xml in forms {
            let d = parse(xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
            assert_eq!(
                field(&d, "subject"),
                Some(&RawValue::Str("Fish & Chips".into())),
                "{xml}"
            );
        }
    }

    #[test]
    fn message_type_phone_ext_and_files() {
        let d = parse(
            r#"<?xml version="1.0"?><ticket><phone ext="123">318-555-8634</phone>
            <message type="text/html"><![CDATA[<b>x</b><script>y</script>]]></message>
            <attachments><file name="a.txt">  hi  </file>
            <file name="b.bin" type="application/octet-stream" encoding="base64">AAEC</file></attachments></ticket>"#,
        )
        .unwrap();
        assert_eq!(
            field(&d, "phone"),
            Some(&RawValue::Str("318-555-8634X123".into()))
        );
        let m = d.message.unwrap();
        assert_eq!((m.body.as_str(), m.format), ("<b>x</b>", BodyFormat::Html));
        assert_eq!(d.attachments[0].data, b"hi");
        assert_eq!(d.attachments[0].content_type, "text/plain");
        assert_eq!(d.attachments[1].data, vec![0, 1, 2]);
    }

    #[test]
    fn declared_encodings_are_honoured() {
        let mut body =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ticket><subject>Caf".to_vec();
        body.extend([0xe9]);
        body.extend(b"</subject></ticket>");
        let d = parse_xml(&body, &LIMITS, &FieldLimits::default()).unwrap();
        assert_eq!(field(&d, "subject"), Some(&RawValue::Str("Café".into())));
        let mut bom = vec![0xff, 0xfe];
        for u in "<ticket><subject>Ωmega</subject></ticket>".encode_utf16() {
            bom.extend(u.to_le_bytes());
        }
        let d = parse_xml(&bom, &LIMITS, &FieldLimits::default()).unwrap();
        assert_eq!(field(&d, "subject"), Some(&RawValue::Str("Ωmega".into())));
    }

    #[test]
    fn refusals() {
        let cases = [
            "<!DOCTYPE ticket [<!ENTITY a \"b\">]><ticket><subject>&a;</subject></ticket>",
            "<!DOCTYPE ticket SYSTEM \"http://x/\"><ticket/>",
            "<ticket><subject>&nope;</subject></ticket>",
            "<ticket><subject>x</ticket>",
            "<other/>",
            "<ticket/><ticket/>",
            "<ticket><subject><b>x</b></subject></ticket>",
            "<ticket><attachments><file name=\"x\" encoding=\"base64\">*not*</file></attachments></ticket>",
            "",
            "<?xml version=\"1.0\" encoding=\"klingon\"?><ticket/>",
        ];
        for xml in cases {
            assert!(parse(xml).is_err(), "accepted: {xml}");
        }
        let deep = format!("<ticket>{}{}</ticket>", "<a>".repeat(40), "</a>".repeat(40));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn malformed_reports_line_and_column() {
        match parse("<ticket>\n<subject>x</subject>\n<message>m</ticket>") {
            Err(IntakeError::Malformed { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_xml(&bytes, &LIMITS, &FieldLimits::default());
        }

        #[test]
        fn never_panics_on_mutated_documents(
            edits in proptest::collection::vec((0usize..1000, proptest::prelude::any::<u8>(), 0u8..3), 1..10)
        ) {
            let mut doc = br#"<?xml version="1.0" encoding="ISO-8859-1"?><ticket a="1&amp;"><name>N</name>
                <phone ext="1">555</phone><message type="text/html"><![CDATA[<b>x</b>]]></message>
                <attachments><file name="f" encoding="base64">AAEC</file></attachments></ticket>"#.to_vec();
            for (pos, byte, op) in edits {
                let pos = pos % doc.len().max(1);
                match op {
                    0 => doc[pos] = byte,
                    1 => { doc.remove(pos); }
                    _ => doc.insert(pos, byte),
                }
                if doc.is_empty() { break; }
            }
            let _ = parse_xml(&doc, &LIMITS, &FieldLimits::default());
        }
    }
}
