//! `POST /api/tickets.json`: osTicket's JSON body (API.md, JSON).
//!
//! The body is read in one pass by a serde visitor, never built into a
//! `serde_json::Value`: every cap (fields, list values, attachments) is
//! checked *while* parsing, so a 37 MiB `[{},{},…]` or an object of
//! millions of keys stops at the first value past its cap instead of
//! building a tree of millions of nodes first (issue 16 point 3).
//! Strings without escapes are borrowed from the body, and a data URL is
//! decoded straight from the body into its bytes: an attachment costs
//! its decoded size once, beside the body.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    AttachmentDraft, BodyFormat, FieldLimits, IntakeError, IntakeLimits, MessageDraft, RawValue,
    TicketDraft, check_attachment, data_url, html,
};

/// Decodes a JSON ticket request.
pub fn parse_json(
    body: &[u8],
    limits: &IntakeLimits,
    field_limits: &FieldLimits,
) -> Result<TicketDraft, IntakeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::EmptyBody);
    }
    let mut ctx = Ctx {
        limits,
        field_limits,
        values: 0,
        failure: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = (&mut de)
        .deserialize_any(TicketVisitor { ctx: &mut ctx })
        .and_then(|draft| de.end().map(|()| draft));
    parsed.map_err(|e| {
        ctx.failure
            .take()
            .unwrap_or_else(|| IntakeError::Malformed {
                format: "JSON",
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
    })
}

/// What every visitor of one request shares: the caps, the count of
/// field values so far, and the refusal that stopped the parse (serde's
/// own error type cannot carry it, so it waits here).
struct Ctx<'l> {
    limits: &'l IntakeLimits,
    field_limits: &'l FieldLimits,
    values: usize,
    failure: Option<IntakeError>,
}

impl Ctx<'_> {
    /// Records `e` and stops the parse.
    fn fail<E: de::Error>(&mut self, e: IntakeError) -> E {
        let text = e.to_string();
        self.failure = Some(e);
        E::custom(text)
    }

    /// Counts one more field value (a field, or an item of a list).
    fn count_value<E: de::Error>(&mut self) -> Result<(), E> {
        self.values += 1;
        if self.values > self.field_limits.max_fields {
            let limit = self.field_limits.max_fields;
            return Err(self.fail(IntakeError::TooManyValues {
                field: "fields".into(),
                limit,
            }));
        }
        Ok(())
    }
}

/// The JSON type of what a visitor met instead, for "expected X, got Y".
const OBJECT: &str = "object";
const ARRAY: &str = "array";

/// The request object: fields, `message`, `attachments`.
struct TicketVisitor<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl TicketVisitor<'_, '_> {
    fn not_an_object<E: de::Error>(self, got: &str) -> E {
        self.ctx.fail(IntakeError::NotATicket(format!(
            "the JSON body must be an object, got {got}"
        )))
    }
}

impl<'de> Visitor<'de> for TicketVisitor<'_, '_> {
    type Value = TicketDraft;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TicketDraft, A::Error> {
        let mut draft = TicketDraft::default();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // A repeated key would silently replace the first value.
            if seen.contains(&key) {
                return Err(self.ctx.fail(IntakeError::Duplicate { field: key }));
            }
            match key.as_str() {
                "message" => {
                    let text = map.next_value_seed(TextSeed {
                        ctx: self.ctx,
                        field: "message",
                    })?;
                    draft.message = parse_message(text).map_err(|e| self.ctx.fail(e))?;
                }
                "attachments" => map.next_value_seed(AttachmentsSeed {
                    ctx: self.ctx,
                    out: &mut draft.attachments,
                })?,
                _ => {
                    let value = map.next_value_seed(RawSeed { ctx: self.ctx })?;
                    draft.fields.push((key.clone(), value));
                }
            }
            seen.insert(key);
        }
        Ok(draft)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<TicketDraft, A::Error> {
        Err(self.not_an_object(ARRAY))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<TicketDraft, E> {
        Err(self.not_an_object("string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<TicketDraft, E> {
        Err(self.not_an_object("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TicketDraft, E> {
        Err(self.not_an_object("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<TicketDraft, E> {
        Err(self.not_an_object("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<TicketDraft, E> {
        Err(self.not_an_object("number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<TicketDraft, E> {
        Err(self.not_an_object("null"))
    }
}

/// A simple field's value; lists are counted item by item, and an
/// object (valid for no field) is skipped without being built.
struct RawSeed<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_, '_> {
    type Value = RawValue;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        self.ctx.count_value()?;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_, '_> {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawValue, E> {
        Ok(RawValue::Number(n.to_string()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawValue, E> {
        Ok(RawValue::Number(n.to_string()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<RawValue, E> {
        // As `serde_json::Number` prints it (the literal is not kept
        // without `arbitrary_precision`, as before).
        Ok(RawValue::Number(
            serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |n| n.to_string()),
        ))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(s.to_string()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        // Each item counts itself before it is parsed (`RawSeed`): a
        // list of millions stops at the cap.
        while let Some(v) = seq.next_element_seed(RawSeed { ctx: self.ctx })? {
            items.push(v);
        }
        Ok(RawValue::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        // Valid for no field (the forms say so); walked, never built.
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawValue::Object)
    }
}

/// A text value (`message`): borrowed from the body when it has no escapes.
enum Text<'de> {
    Null,
    Str(Cow<'de, str>),
}

struct TextSeed<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    field: &'static str,
}

impl TextSeed<'_, '_> {
    fn wrong<E: de::Error>(self, got: &'static str) -> E {
        let field = self.field.to_string();
        self.ctx.fail(IntakeError::WrongType {
            field,
            expected: "a string",
            got,
        })
    }
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_, '_> {
    type Value = Text<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_, '_> {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(s)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
        Err(self.wrong("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
        Err(self.wrong("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
        Err(self.wrong("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
        Err(self.wrong("number"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text<'de>, A::Error> {
        Err(self.wrong(ARRAY))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text<'de>, A::Error> {
        Err(self.wrong(OBJECT))
    }
}

const ATTACHMENTS_SHAPE: &str = "an array of {\"name\": \"data:...\"} objects";

/// `attachments`: `null` or `[{"name": "data:..."}, ...]`.
struct AttachmentsSeed<'c, 'l, 'o> {
    ctx: &'c mut Ctx<'l>,
    out: &'o mut Vec<AttachmentDraft>,
}

impl AttachmentsSeed<'_, '_, '_> {
    fn wrong<E: de::Error>(self, got: &'static str) -> E {
        self.ctx.fail(IntakeError::WrongType {
            field: "attachments".into(),
            expected: ATTACHMENTS_SHAPE,
            got,
        })
    }
}

impl<'de> DeserializeSeed<'de> for AttachmentsSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttachmentsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ATTACHMENTS_SHAPE)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(FilesSeed {
                ctx: self.ctx,
                out: self.out,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.wrong(OBJECT))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.wrong("string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.wrong("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.wrong("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.wrong("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.wrong("number"))
    }
}

/// One item of `attachments`: an object of one or more files, each
/// decoded as soon as it is read. `{}` is refused: it would store nothing.
struct FilesSeed<'c, 'l, 'o> {
    ctx: &'c mut Ctx<'l>,
    out: &'o mut Vec<AttachmentDraft>,
}

impl<'de> DeserializeSeed<'de> for FilesSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl FilesSeed<'_, '_, '_> {
    fn not_files<E: de::Error>(self) -> E {
        self.ctx.fail(IntakeError::WrongType {
            field: "attachments".into(),
            expected: ATTACHMENTS_SHAPE,
            got: "an array of other values",
        })
    }
}

impl<'de> Visitor<'de> for FilesSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{\"name\": \"data:...\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut files = 0;
        while let Some(name) = map.next_key::<String>()? {
            // The count is checked before the file is decoded.
            if self.out.len() >= self.ctx.limits.max_attachments {
                let limit = self.ctx.limits.max_attachments;
                return Err(self.ctx.fail(IntakeError::TooManyAttachments {
                    count: self.out.len() + 1,
                    limit,
                }));
            }
            let att = map.next_value_seed(FileSeed {
                ctx: self.ctx,
                name,
            })?;
            check_attachment(self.ctx.limits, self.out.len(), &att)
                .map_err(|e| self.ctx.fail(e))?;
            self.out.push(att);
            files += 1;
        }
        if files == 0 {
            return Err(self.ctx.fail(IntakeError::WrongType {
                field: "attachments".into(),
                expected: "one or more \"name\": \"data:...\" pairs in each object",
                got: "an empty object",
            }));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_files())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_files())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_files())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_files())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_files())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_files())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_files())
    }
}

/// One file: its data URL, decoded while the body is borrowed.
struct FileSeed<'c, 'l> {
    ctx: &'c mut Ctx<'l>,
    name: String,
}

impl FileSeed<'_, '_> {
    fn wrong<E: de::Error>(self, got: &'static str) -> E {
        self.ctx.fail(IntakeError::WrongType {
            field: self.name,
            expected: "a data URL string",
            got,
        })
    }
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = AttachmentDraft;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<AttachmentDraft, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_, '_> {
    type Value = AttachmentDraft;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a data URL string")
    }

    fn visit_str<E: de::Error>(self, contents: &str) -> Result<AttachmentDraft, E> {
        match file_from_data_url(self.name.clone(), contents) {
            Ok(att) => Ok(att),
            Err(e) => Err(self.ctx.fail(e)),
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<AttachmentDraft, E> {
        Err(self.wrong("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<AttachmentDraft, E> {
        Err(self.wrong("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<AttachmentDraft, E> {
        Err(self.wrong("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<AttachmentDraft, E> {
        Err(self.wrong("number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<AttachmentDraft, E> {
        Err(self.wrong("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<AttachmentDraft, A::Error> {
        Err(self.wrong(ARRAY))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<AttachmentDraft, A::Error> {
        Err(self.wrong(OBJECT))
    }
}

fn file_from_data_url(name: String, contents: &str) -> Result<AttachmentDraft, IntakeError> {
    let url = data_url::parse(contents, &name)?;
    let content_type = url.media_type.clone();
    let data = url.into_file_bytes(&name)?;
    Ok(AttachmentDraft {
        name,
        content_type,
        data,
        inline: false,
        content_id: None,
    })
}

/// A plain string is text/plain even when it holds markup; a data URL
/// carries its own type and charset.
fn parse_message(text: Text<'_>) -> Result<Option<MessageDraft>, IntakeError> {
    let s = match text {
        Text::Null => return Ok(None),
        Text::Str(s) => s,
    };
    if !data_url::is_data_url(&s) {
        return Ok(Some(MessageDraft {
            body: s.into_owned(),
            format: BodyFormat::Text,
        }));
    }
    let url = data_url::parse(&s, "message")?;
    drop(s);
    let format = match url.media_type.as_str() {
        "text/html" => BodyFormat::Html,
        t if t.starts_with("text/") => BodyFormat::Text,
        other => {
            return Err(IntakeError::BadDataUrl {
                field: "message".into(),
                reason: format!("media type {other} is not text/plain or text/html"),
            });
        }
    };
    let text = url.text("message")?;
    let body = match format {
        BodyFormat::Html => html::sanitize(&text),
        BodyFormat::Text => text,
    };
    Ok(Some(MessageDraft { body, format }))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => ARRAY,
        Value::Object(_) => OBJECT,
    }
}

/// `[{"name": "data:..."}, ...]` already parsed (the staff API's reply
/// body); the same rules as a ticket's: several files may share a name,
/// `{}` is refused, the count is checked before each file is decoded.
pub(crate) fn parse_attachments(
    value: Value,
    limits: &IntakeLimits,
    out: &mut Vec<AttachmentDraft>,
) -> Result<(), IntakeError> {
    let items = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        other => {
            return Err(IntakeError::WrongType {
                field: "attachments".into(),
                expected: ATTACHMENTS_SHAPE,
                got: type_name(&other),
            });
        }
    };
    for item in items {
        let Value::Object(files) = item else {
            return Err(IntakeError::WrongType {
                field: "attachments".into(),
                expected: ATTACHMENTS_SHAPE,
                got: "an array of other values",
            });
        };
        if files.is_empty() {
            return Err(IntakeError::WrongType {
                field: "attachments".into(),
                expected: "one or more \"name\": \"data:...\" pairs in each object",
                got: "an empty object",
            });
        }
        for (name, contents) in files {
            if out.len() >= limits.max_attachments {
                return Err(IntakeError::TooManyAttachments {
                    count: out.len() + 1,
                    limit: limits.max_attachments,
                });
            }
            let Value::String(contents) = contents else {
                return Err(IntakeError::WrongType {
                    field: name,
                    expected: "a data URL string",
                    got: type_name(&contents),
                });
            };
            let att = file_from_data_url(name, &contents)?;
            check_attachment(limits, out.len(), &att)?;
            out.push(att);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_attachment_bytes: 16,
        max_attachments: 3,
    };

    fn parse(s: &str) -> Result<TicketDraft, IntakeError> {
        parse_json(s.as_bytes(), &LIMITS, &FieldLimits::default())
    }

    #[test]
    fn fields_message_and_attachments_are_split() {
        let d = parse(
            r#"{"name":"A","priority":3,"alert":false,"message":"hi <b>x</b>",
            "attachments":[{"a.txt":"data:text/plain,one"},{"a.txt":"data:text/plain,two"}]}"#,
        )
        .unwrap();
        assert_eq!(
            d.fields,
            vec![
                ("name".into(), RawValue::Str("A".into())),
                ("priority".into(), RawValue::Number("3".into())),
                ("alert".into(), RawValue::Bool(false)),
            ]
        );
        let m = d.message.unwrap();
        assert_eq!(
            (m.body.as_str(), m.format),
            ("hi <b>x</b>", BodyFormat::Text)
        );
        assert_eq!(d.attachments.len(), 2);
        assert_eq!(d.attachments[1].data, b"two");
    }

    #[test]
    fn html_message_is_sanitised() {
        let d = parse(r#"{"message":"data:text/html,<b>x</b><script>y</script>"}"#).unwrap();
        let m = d.message.unwrap();
        assert_eq!((m.body.as_str(), m.format), ("<b>x</b>", BodyFormat::Html));
    }

    #[test]
    fn malformed_json_reports_position() {
        match parse("{\n  \"name\": \"x\",\n}") {
            Err(IntakeError::Malformed { line, column, .. }) => assert_eq!((line, column), (3, 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("  "), Err(IntakeError::EmptyBody));
        assert!(matches!(parse("[1]"), Err(IntakeError::NotATicket(_))));
        assert!(matches!(
            parse(r#"{"message":{}}"#),
            Err(IntakeError::WrongType { .. })
        ));
        assert!(matches!(
            parse(r#"{"attachments":{}}"#),
            Err(IntakeError::WrongType { .. })
        ));
        assert!(matches!(
            parse(r#"{"attachments":[{"big":"data:,01234567890123456"}]}"#),
            Err(IntakeError::AttachmentTooLarge { .. })
        ));
        assert!(matches!(
            parse(
                r#"{"attachments":[{"a":"data:,1"},{"b":"data:,2"},{"c":"data:,3"},{"d":"data:,4"}]}"#
            ),
            Err(IntakeError::TooManyAttachments { .. })
        ));
        assert!(matches!(
            parse(r#"{"attachments":[{"a":"plain text"}]}"#),
            Err(IntakeError::BadDataUrl { .. })
        ));
    }

    #[test]
    fn shapes_are_refused_while_parsing() {
        let few = FieldLimits {
            max_fields: 3,
            ..FieldLimits::default()
        };
        let parse_few = |s: &str| parse_json(s.as_bytes(), &LIMITS, &few);
        assert!(matches!(
            parse(r#"{"attachments":[{}]}"#),
            Err(IntakeError::WrongType {
                got: "an empty object",
                ..
            })
        ));
        assert_eq!(
            parse(r#"{"a":1,"b":2,"a":3}"#),
            Err(IntakeError::Duplicate { field: "a".into() })
        );
        assert!(parse_few(r#"{"a":1,"b":2,"c":3}"#).is_ok());
        // The fourth value fails before the rest is read: the syntax
        // error after it is never reached.
        assert_eq!(
            parse_few(r#"{"a":1,"b":2,"c":3,"d":4, oops"#),
            Err(IntakeError::TooManyValues {
                field: "fields".into(),
                limit: 3
            })
        );
        assert!(matches!(
            parse_few(r#"{"a":[1,2,3]}"#),
            Err(IntakeError::TooManyValues { .. })
        ));
        assert!(parse_few(r#"{"a":[1,2]}"#).is_ok());
        // An object is walked, not built: any size, one value.
        assert_eq!(
            parse_few(r#"{"a":{"x":1,"y":{"z":[1,2,3,4,5]}}}"#)
                .unwrap()
                .fields,
            vec![("a".into(), RawValue::Object)]
        );
        // The attachment count stops at the first file past it.
        assert!(matches!(
            parse(r#"{"attachments":[{"a":"data:,1","b":"data:,2","c":"data:,3","d":"data:,4"}]}"#),
            Err(IntakeError::TooManyAttachments { count: 4, limit: 3 })
        ));
        // Escaped and borrowed strings read alike.
        let d = parse(r#"{"message":"a\/b","attachments":[{"f":"data:;base64,YS9i"}]}"#).unwrap();
        assert_eq!(d.message.unwrap().body, "a/b");
        assert_eq!(d.attachments[0].data, b"a/b");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,200}") {
            let _ = parse_json(s.as_bytes(), &LIMITS, &FieldLimits::default());
            let wrapped = format!("{{\"message\": \"data:{s}\", \"attachments\": [{{\"f\": \"data:{s}\"}}]}}");
            let _ = parse_json(wrapped.as_bytes(), &LIMITS, &FieldLimits::default());
        }
    }
}
