//! `POST /api/tickets.json`: osTicket's JSON body (API.md, JSON).

use serde_json::Value;

use super::{
    AttachmentDraft, BodyFormat, IntakeError, IntakeLimits, MessageDraft, RawValue, TicketDraft,
    check_attachment, data_url, html,
};

/// Decodes a JSON ticket request.
pub fn parse_json(body: &[u8], limits: &IntakeLimits) -> Result<TicketDraft, IntakeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::EmptyBody);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| IntakeError::Malformed {
        format: "JSON",
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(IntakeError::NotATicket(format!(
            "the JSON body must be an object, got {}",
            raw(&value).type_name()
        )));
    };
    let mut draft = TicketDraft::default();
    for (key, value) in map {
        match key.as_str() {
            "message" => draft.message = parse_message(value)?,
            "attachments" => parse_attachments(value, limits, &mut draft.attachments)?,
            _ => draft.fields.push((key, raw(&value))),
        }
    }
    Ok(draft)
}

fn raw(v: &Value) -> RawValue {
    match v {
        Value::Null => RawValue::Null,
        Value::Bool(b) => RawValue::Bool(*b),
        Value::Number(n) => RawValue::Number(n.to_string()),
        Value::String(s) => RawValue::Str(s.clone()),
        Value::Array(a) => RawValue::List(a.iter().map(raw).collect()),
        Value::Object(_) => RawValue::Object,
    }
}

/// A plain string is text/plain even when it holds markup; a data URL
/// carries its own type and charset.
fn parse_message(value: Value) -> Result<Option<MessageDraft>, IntakeError> {
    let s = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        other => {
            return Err(IntakeError::WrongType {
                field: "message".into(),
                expected: "a string",
                got: raw(&other).type_name(),
            });
        }
    };
    if !data_url::is_data_url(&s) {
        return Ok(Some(MessageDraft {
            body: s,
            format: BodyFormat::Text,
        }));
    }
    let url = data_url::parse(&s, "message")?;
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

/// `[{"name": "data:..."}, ...]`; several files may share a name.
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
                expected: "an array of {\"name\": \"data:...\"} objects",
                got: raw(&other).type_name(),
            });
        }
    };
    for item in items {
        let Value::Object(files) = item else {
            return Err(IntakeError::WrongType {
                field: "attachments".into(),
                expected: "an array of {\"name\": \"data:...\"} objects",
                got: "an array of other values",
            });
        };
        for (name, contents) in files {
            let Value::String(contents) = contents else {
                return Err(IntakeError::WrongType {
                    field: name,
                    expected: "a data URL string",
                    got: raw(&contents).type_name(),
                });
            };
            let url = data_url::parse(&contents, &name)?;
            let content_type = url.media_type.clone();
            let data = url.into_file_bytes(&name)?;
            let att = AttachmentDraft {
                name,
                content_type,
                data,
                inline: false,
                content_id: None,
            };
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
        parse_json(s.as_bytes(), &LIMITS)
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

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,200}") {
            let _ = parse_json(s.as_bytes(), &LIMITS);
            let wrapped = format!("{{\"message\": \"data:{s}\", \"attachments\": [{{\"f\": \"data:{s}\"}}]}}");
            let _ = parse_json(wrapped.as_bytes(), &LIMITS);
        }
    }
}
