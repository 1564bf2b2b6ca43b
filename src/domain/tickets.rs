//! The create-ticket use case: a [`TicketDraft`] checked against the
//! catalog becomes a [`NewTicket`], stored in one transaction.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::DomainError;
use super::catalog::{Catalog, FormField, TopicEntry};
use super::fields::{check_text, parse_bool, parse_field, parse_ip, scalar_text};
use super::ids::EmailAddress;
use super::notify::{MailEvent, MailFacts};
use super::views::{EntryKind, Source};
use crate::intake::{AttachmentDraft, FieldLimits, RawValue, TicketDraft};
use crate::storage::{Named, NewAttachment, NewEntry, NewFieldValue, NewTicket, Store, StoreError};

/// Facts about the request that are not in its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address (after the trusted-proxy rule).
    pub client_ip: IpAddr,
    /// When the request arrived.
    pub now: Timestamp,
}

/// A ticket ready to store, and what was dropped on the way.
#[derive(Debug)]
pub struct Prepared {
    /// The ticket.
    pub ticket: NewTicket,
    /// Unknown fields dropped under `unknown_fields = "ignore"`.
    pub ignored_fields: Vec<String>,
}

/// Why a ticket was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The request broke a rule (4xx).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Storage failed (5xx).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Built-in request fields (API.md, Create a ticket), apart from message
/// and attachments which intake decodes.
const BUILTIN: &[&str] = &[
    "email",
    "name",
    "subject",
    "alert",
    "autorespond",
    "ip",
    "priority",
    "priorityId",
    "source",
    "topicId",
];

fn invalid(field: &str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn missing(field: &str, label: &str) -> DomainError {
    DomainError::Missing {
        field: field.to_string(),
        label: label.to_string(),
    }
}

fn parse_id(field: &str, raw: &RawValue) -> Result<i64, DomainError> {
    let text = scalar_text(raw).map_err(|m| invalid(field, m))?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| invalid(field, format!("\"{text}\" is not an id")))
}

/// A required text value: present, a string (or number), not blank.
fn required_text(
    builtin: &HashMap<&str, RawValue>,
    field: &str,
    label: &str,
) -> Result<String, DomainError> {
    match builtin.get(field) {
        None => Err(missing(field, label)),
        Some(raw) if raw.is_empty() => Err(missing(field, label)),
        Some(raw) => {
            let s = scalar_text(raw).map_err(|m| invalid(field, m))?;
            let s = s.trim();
            if s.is_empty() {
                Err(missing(field, label))
            } else {
                Ok(s.to_string())
            }
        }
    }
}

/// The rules every JSON or XML request meets before its fields are
/// looked at (issue 16 points 4 and 5), the same on both backends: each
/// field named once (a second value would silently replace the first);
/// every text storable (no NUL or other control character, which
/// PostgreSQL refuses or which XML 1.0 excludes) and within its length;
/// each file name too. A refusal, not a truncation: an API client can
/// correct its request, and a ticket must not silently differ from it.
pub fn check_draft(draft: &TicketDraft, limits: &FieldLimits) -> Result<(), DomainError> {
    let mut seen = HashSet::with_capacity(draft.fields.len());
    for (name, value) in &draft.fields {
        if !seen.insert(name.as_str()) {
            return Err(invalid(name, "given more than once"));
        }
        let max = match name.as_str() {
            "name" => limits.max_name_chars,
            "subject" => limits.max_subject_chars,
            _ => limits.max_field_value_chars,
        };
        check_raw(value, max).map_err(|m| invalid(name, m))?;
    }
    if let Some(m) = &draft.message {
        check_text(&m.body, usize::MAX).map_err(|e| invalid("message", e))?;
    }
    for a in &draft.attachments {
        check_text(&a.name, limits.max_file_name_chars).map_err(|e| {
            let shown: String = a.name.chars().take(64).collect();
            invalid("attachments", format!("file name {shown:?}: {e}"))
        })?;
    }
    Ok(())
}

fn check_raw(value: &RawValue, max_chars: usize) -> Result<(), String> {
    match value {
        RawValue::Str(s) | RawValue::Number(s) => check_text(s, max_chars),
        RawValue::List(items) => items.iter().try_for_each(|v| check_raw(v, max_chars)),
        RawValue::Null | RawValue::Bool(_) | RawValue::Object => Ok(()),
    }
}

/// A file name safe to hand to a browser or a file system (issue 16
/// point 5), for downloads: the stored name is kept as sent, for display.
/// Path separators become `_`; control characters (C0, DEL, C1) and the
/// bidirectional marks, embeddings, overrides and isolates that can make
/// `invoice\u{202E}fdp.exe` read as `invoiceexe.pdf` are removed; leading
/// dots (hidden files, `..`) and trailing dots and spaces (Windows drops
/// them) go; at most `max_chars` characters, keeping a short extension.
/// Never empty: `attachment` when nothing is left.
pub fn download_name(name: &str, max_chars: usize) -> String {
    let is_bidi = |c: char| {
        matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    };
    let cleaned: String = name
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi(c))
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let max_chars = max_chars.max(1);
    let out = if trimmed.chars().count() <= max_chars {
        trimmed.to_string()
    } else {
        // Keep an extension of up to 16 characters; cut the stem.
        let ext = trimmed
            .rfind('.')
            .map(|i| &trimmed[i..])
            .filter(|e| e.chars().count() <= 16 && e.chars().count() < max_chars)
            .unwrap_or("");
        let stem_chars = max_chars - ext.chars().count();
        let stem: String = trimmed.chars().take(stem_chars).collect();
        format!(
            "{}{ext}",
            stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace())
        )
    };
    if out.is_empty() {
        "attachment".to_string()
    } else {
        out
    }
}

/// Checks a draft against the catalog and builds the ticket to store.
pub fn prepare_ticket(
    catalog: &Catalog,
    draft: TicketDraft,
    ctx: &RequestContext,
) -> Result<Prepared, DomainError> {
    check_draft(&draft, &catalog.field_limits)?;
    let mut builtin: HashMap<&str, RawValue> = HashMap::new();
    let mut custom: Vec<(String, RawValue)> = Vec::new();
    for (name, value) in draft.fields {
        match BUILTIN.iter().find(|b| **b == name) {
            Some(b) => {
                builtin.insert(b, value);
            }
            None => custom.push((name, value)),
        }
    }

    // The topic decides which extra forms apply, so it comes first.
    let topic_id = match builtin.get("topicId") {
        Some(raw) if !raw.is_empty() => Some(parse_id("topicId", raw)?),
        _ => None,
    };
    let topic = catalog.topic(topic_id, "topicId")?;

    // Custom fields: known to the user/ticket forms or the topic's forms.
    let mut ignored_fields = Vec::new();
    let mut values: HashMap<String, (&FormField, serde_json::Value)> = HashMap::new();
    for (name, raw) in &custom {
        let def = catalog
            .always_by_name
            .get(name)
            .or_else(|| topic.and_then(|t| t.by_name.get(name)));
        let Some(def) = def else {
            match catalog.unknown_fields {
                crate::config::UnknownFields::Reject => {
                    return Err(DomainError::Unexpected {
                        field: name.clone(),
                    });
                }
                crate::config::UnknownFields::Ignore => {
                    ignored_fields.push(name.clone());
                    continue;
                }
            }
        };
        let parsed =
            parse_field(&def.field, raw, &catalog.tz, ctx.now).map_err(|m| invalid(name, m))?;
        if let Some(v) = parsed {
            values.insert(name.clone(), (def, v.to_json(def.field.multiple)));
        }
    }

    // Built-in fields, in the order a person fills the form.
    let email_text = required_text(&builtin, "email", "Email Address")?;
    let email = EmailAddress::parse(&email_text).map_err(|m| invalid("email", m))?;
    if catalog.is_banned(email.as_str(), crate::config::Channel::Api) {
        return Err(DomainError::Denied {
            field: "email".into(),
        });
    }
    let name = required_text(&builtin, "name", "Full Name")?;
    let subject = required_text(&builtin, "subject", "Issue Summary")?;
    let message = match draft.message {
        Some(m) if !m.body.trim().is_empty() => m,
        _ => return Err(missing("message", "Issue Details")),
    };
    let flag = |field: &str| -> Result<bool, DomainError> {
        match builtin.get(field) {
            Some(raw) if !raw.is_empty() => parse_bool(raw).map_err(|m| invalid(field, m)),
            _ => Ok(true),
        }
    };
    let alert = flag("alert")?;
    let autorespond = flag("autorespond")?;
    let ip = match builtin.get("ip") {
        Some(raw) if !raw.is_empty() => {
            let text = scalar_text(raw).map_err(|m| invalid("ip", m))?;
            parse_ip(&text).map_err(|m| invalid("ip", m))?
        }
        _ => ctx.client_ip,
    };
    let source = match builtin.get("source") {
        Some(raw) if !raw.is_empty() => {
            let text = scalar_text(raw).map_err(|m| invalid("source", m))?;
            let text = text.trim();
            Source::parse_lenient(text).ok_or_else(|| {
                let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
                invalid(
                    "source",
                    format!("\"{text}\" is not one of {}", names.join(", ")),
                )
            })?
        }
        _ => Source::Api,
    };
    // `priority` wins over osTicket's alias `priorityId`.
    let priority_field = ["priority", "priorityId"]
        .into_iter()
        .find(|f| builtin.get(f).is_some_and(|r| !r.is_empty()));
    let priority = match priority_field {
        Some(field) => {
            let raw = &builtin[field];
            let text = scalar_text(raw).map_err(|m| invalid(field, m))?;
            let text = text.trim();
            let found = match text.parse::<i64>() {
                Ok(id) => catalog.priorities.get(&id),
                Err(_) => catalog.priorities_by_name.get(&text.to_lowercase()),
            };
            found
                .cloned()
                .ok_or_else(|| invalid(field, format!("unknown priority \"{text}\"")))?
        }
        None => default_priority(catalog, topic),
    };

    // Required custom fields of every form that applies.
    let topic_fields = topic.map(|t| t.fields.as_slice()).unwrap_or(&[]);
    for def in catalog.always.iter().chain(topic_fields) {
        if def.field.required && !values.contains_key(&def.field.name) {
            let label = if def.field.label.is_empty() {
                &def.field.name
            } else {
                &def.field.label
            };
            return Err(missing(&def.field.name, label));
        }
    }

    let mut fields: Vec<NewFieldValue> = values
        .into_iter()
        .map(|(name, (def, value))| NewFieldValue {
            form: def.form.clone(),
            name,
            value,
        })
        .collect();
    fields.sort_by(|a, b| (&a.form, &a.name).cmp(&(&b.form, &b.name)));

    let attachments = stored_attachments(draft.attachments);

    let ticket = assemble(
        catalog,
        Assembly {
            user_email: email.clone(),
            user_name: name.clone(),
            subject,
            source,
            priority,
            topic,
            ip: ip.to_string(),
            now: ctx.now,
            alert,
            autorespond,
            automatic: false,
            fields,
            entry: NewEntry {
                kind: EntryKind::Message,
                format: message.format,
                body: message.body,
                from_name: name,
                from_email: email,
                message_id: None,
                auto_reply: false,
                bounce: false,
                attachments,
                dropped: Vec::new(),
                agent: None,
            },
        },
    );
    Ok(Prepared {
        ticket,
        ignored_fields,
    })
}

/// A ticket's priority when the request names none: its topic's
/// default, else the helpdesk's.
pub(crate) fn default_priority(catalog: &Catalog, topic: Option<&TopicEntry>) -> Named {
    topic
        .and_then(|t| t.default_priority.clone())
        .unwrap_or_else(|| catalog.default_priority.clone())
}

/// What each channel (JSON, XML, email) decides about a new ticket;
/// [`assemble`] derives the rest the same way for all of them.
pub(crate) struct Assembly<'a> {
    /// The user's address, parsed.
    pub user_email: EmailAddress,
    /// The user's name.
    pub user_name: String,
    /// Subject.
    pub subject: String,
    /// How it came in.
    pub source: Source,
    /// Priority.
    pub priority: Named,
    /// Help topic, if any.
    pub topic: Option<&'a TopicEntry>,
    /// Client address (empty for the pipe).
    pub ip: String,
    /// When.
    pub now: Timestamp,
    /// The request's `alert` flag.
    pub alert: bool,
    /// The request's `autorespond` flag.
    pub autorespond: bool,
    /// Automatic mail (bounce, auto-reply): queues no mail.
    pub automatic: bool,
    /// Form values.
    pub fields: Vec<NewFieldValue>,
    /// The first entry.
    pub entry: NewEntry,
}

/// One ticket assembly for every channel: the department from the topic
/// (else the default) and the mail the rules queue for a new ticket.
pub(crate) fn assemble(catalog: &Catalog, a: Assembly<'_>) -> NewTicket {
    let department = a
        .topic
        .and_then(|t| t.department.clone())
        .or_else(|| catalog.default_department.clone());
    let mail = catalog.mail_rules.plan(&MailFacts {
        event: MailEvent::New,
        automatic: a.automatic,
        autorespond: a.autorespond,
        alert: a.alert,
        department: department.as_ref().map(|d| d.id),
        user_email: a.user_email.as_str(),
    });
    NewTicket {
        user_email: a.user_email,
        user_name: a.user_name,
        subject: a.subject,
        source: a.source,
        priority: a.priority,
        topic: a.topic.map(|t| t.named.clone()),
        department,
        ip: a.ip,
        alert: a.alert && !a.automatic,
        autorespond: a.autorespond && !a.automatic,
        fields: a.fields,
        entry: a.entry,
        mail,
        now: a.now,
        idempotency: None,
    }
}

/// Decoded files as storage keeps them (content addressed by SHA-256).
pub(crate) fn stored_attachments(drafts: Vec<AttachmentDraft>) -> Vec<NewAttachment> {
    drafts
        .into_iter()
        .map(|a| NewAttachment {
            sha256: Sha256::digest(&a.data).into(),
            name: a.name,
            content_type: a.content_type,
            data: a.data,
            inline: a.inline,
            content_id: a.content_id,
        })
        .collect()
}

/// Stores a prepared ticket; the number is returned once it is durable.
pub async fn create_ticket(
    store: &dyn Store,
    prepared: Prepared,
) -> Result<crate::domain::ids::TicketNumber, CreateError> {
    Ok(store.create_ticket(prepared.ticket).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::intake::{BodyFormat, MessageDraft};

    fn catalog() -> Catalog {
        let text = r#"
[[topics]]
id = 20
name = "Equipment Fault"
default_priority_id = 3
forms = ["equipment"]

[[topics]]
id = 21
name = "Old"
active = false

[forms.equipment]
fields = [
  { name = "serial_number", label = "Serial Number", type = "text", required = true },
  { name = "asset_tag", type = "text" },
]
"#;
        let config: Config = toml::from_str(text).unwrap();
        Catalog::new(&config.validated().unwrap())
    }

    fn draft(extra: &[(&str, RawValue)]) -> TicketDraft {
        let mut fields: Vec<(String, RawValue)> = vec![
            ("name".into(), RawValue::Str("A".into())),
            ("email".into(), RawValue::Str("a@example.com".into())),
            ("subject".into(), RawValue::Str("S".into())),
        ];
        for (k, v) in extra {
            fields.retain(|(n, _)| n != k);
            fields.push((k.to_string(), v.clone()));
        }
        TicketDraft {
            fields,
            message: Some(MessageDraft {
                body: "m".into(),
                format: BodyFormat::Text,
            }),
            attachments: vec![],
        }
    }

    fn ctx() -> RequestContext {
        RequestContext {
            client_ip: "127.0.0.1".parse().unwrap(),
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
        }
    }

    fn err(extra: &[(&str, RawValue)]) -> DomainError {
        prepare_ticket(&catalog(), draft(extra), &ctx()).unwrap_err()
    }

    fn s(v: &str) -> RawValue {
        RawValue::Str(v.into())
    }

    #[test]
    fn defaults() {
        let p = prepare_ticket(&catalog(), draft(&[]), &ctx()).unwrap();
        let t = p.ticket;
        assert_eq!(
            (t.priority.id, t.source.as_str(), t.ip.as_str()),
            (2, "API", "127.0.0.1")
        );
        assert!(t.topic.is_none() && t.alert && t.autorespond);
        assert_eq!(t.department.unwrap().name, "Support");
    }

    #[test]
    fn topic_forms_and_priority() {
        let p = prepare_ticket(
            &catalog(),
            draft(&[
                ("topicId", RawValue::Number("20".into())),
                ("serial_number", s("SN1")),
            ]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(p.ticket.priority.id, 3);
        assert_eq!(p.ticket.fields[0].name, "serial_number");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(Vec<(&str, RawValue)>, &str)> = vec![
            (vec![("asset_tag", s("x"))], "asset_tag"),
            (vec![("favourite_colour", s("x"))], "favourite_colour"),
            (vec![("topicId", s("20"))], "serial_number"),
            (vec![("topicId", s("99"))], "topicId"),
            (vec![("topicId", s("21"))], "topicId"),
            (vec![("priority", s("9"))], "priority"),
            (vec![("priorityId", s("x"))], "priorityId"),
            (vec![("ip", s("999.1.1.1"))], "ip"),
            (vec![("source", s("Fax"))], "source"),
            (vec![("alert", s("maybe"))], "alert"),
            (vec![("email", s("nope"))], "email"),
            (vec![("email", RawValue::Null)], "email"),
            (vec![("name", s("  "))], "name"),
            (vec![("subject", RawValue::List(vec![s("a")]))], "subject"),
            (vec![("phone", s("call me"))], "phone"),
        ];
        for (extra, field) in cases {
            assert_eq!(err(&extra).field(), field, "{extra:?}");
        }
    }

    #[test]
    fn download_names_lose_paths_controls_and_bidi_marks() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "_.._etc_passwd"),
            ("a\\b.txt", "a_b.txt"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("\u{2066}x\u{2069}\u{200F}.txt", "x.txt"),
            ("bell\u{7}\u{85}\u{0}.txt", "bell.txt"),
            (".hidden", "hidden"),
            ("name. . ", "name"),
            ("Grüße 日本.txt", "Grüße 日本.txt"),
            ("", "attachment"),
            ("...", "attachment"),
        ];
        for (name, want) in cases {
            assert_eq!(download_name(name, 255), want, "{name:?}");
        }
        let long = download_name(&format!("{}.pdf", "é".repeat(300)), 255);
        assert_eq!(long.chars().count(), 255);
        assert!(long.ends_with("é.pdf"), "{long}");
        assert_eq!(download_name("abcdef", 3), "abc");
    }

    #[test]
    fn shape_refusals_name_the_field() {
        let limits = FieldLimits::default();
        let check = |extra: &[(&str, RawValue)]| {
            check_draft(&draft(extra), &limits)
                .err()
                .map(|e| e.field().to_string())
        };
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("subject", s("a\u{0}b"))]), Some("subject".into()));
        assert_eq!(check(&[("name", s(&"n".repeat(129)))]), Some("name".into()));
        assert_eq!(check(&[("name", s(&"é".repeat(128)))]), None);
        assert_eq!(
            check(&[("notes", RawValue::List(vec![s("ok"), s("\u{1b}[2J")]))]),
            Some("notes".into())
        );
        let mut d = draft(&[]);
        d.fields.push(("subject".into(), s("again")));
        assert_eq!(check_draft(&d, &limits).unwrap_err().field(), "subject");
        let mut d = draft(&[]);
        d.attachments.push(AttachmentDraft {
            name: "a\u{0}.txt".into(),
            content_type: "text/plain".into(),
            data: vec![0],
            inline: false,
            content_id: None,
        });
        assert_eq!(check_draft(&d, &limits).unwrap_err().field(), "attachments");
    }

    #[test]
    fn unknown_fields_can_be_ignored() {
        let mut c = catalog();
        c.unknown_fields = crate::config::UnknownFields::Ignore;
        let p = prepare_ticket(&c, draft(&[("favourite_colour", s("blue"))]), &ctx()).unwrap();
        assert_eq!(p.ignored_fields, vec!["favourite_colour"]);
    }

    #[test]
    fn source_and_priority_by_name_are_case_insensitive() {
        let p = prepare_ticket(
            &catalog(),
            draft(&[("source", s("phone")), ("priority", s("high"))]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            (p.ticket.source.as_str(), p.ticket.priority.id),
            ("Phone", 3)
        );
    }
}
