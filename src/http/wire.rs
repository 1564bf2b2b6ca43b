//! The read API's JSON (API.md, Read a ticket): the wire shape of the
//! domain's views, decided here and nowhere else. Field order is the
//! order API.md shows.
//!
//! The types derive `ToSchema`: the OpenAPI document (`http::openapi`)
//! describes exactly these structs. Every field is always written (no
//! `skip_serializing_if`), so an `Option` is required and nullable.

use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::schema;
use crate::domain::views::{
    AttachmentView, DroppedPart, EntryView, Named, NotificationView, Party, TicketView, format_time,
};

/// A ticket as the intake read API shows it (`GET /api/tickets/{number}.json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ticket)]
pub struct TicketJson<'a> {
    /// The ticket number.
    #[schema(example = "123456")]
    number: &'a str,
    subject: &'a str,
    #[schema(schema_with = schema::ticket_status)]
    status: &'static str,
    /// How the ticket came in.
    #[schema(schema_with = schema::source)]
    source: &'static str,
    priority: NamedJson<'a>,
    /// The help topic, `null` when there is none.
    #[schema(required = true)]
    topic: Option<NamedJson<'a>>,
    /// The department, `null` when there is none.
    #[schema(required = true)]
    department: Option<NamedJson<'a>>,
    user: PartyJson<'a>,
    /// The client's address the ticket was made from (or the `ip` given).
    #[schema(example = "10.0.0.1")]
    ip: &'a str,
    #[schema(value_type = String, format = DateTime, example = "2026-11-28T10:00:00Z")]
    created: String,
    /// The form fields given with this ticket, normalised: phone as
    /// `digitsXext`, dates as `YYYY-MM-DD`, timezone-aware datetimes as
    /// RFC 3339 in UTC, choices as their key, booleans as `true`/`false`.
    #[schema(value_type = Object, additional_properties = true, example = json!({"phone": "3185558634X123"}))]
    fields: &'a serde_json::Map<String, serde_json::Value>,
    /// Messages and responses, oldest first (internal notes are never shown here).
    thread: Vec<EntryJson<'a>>,
    /// The mail queued for this ticket.
    notifications: Vec<NotificationJson<'a>>,
}

/// An id and its name (priority, topic, department, agent).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Named)]
pub(crate) struct NamedJson<'a> {
    pub(crate) id: i64,
    pub(crate) name: &'a str,
}

/// A name and an address.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Party)]
pub(crate) struct PartyJson<'a> {
    pub(crate) name: &'a str,
    #[schema(format = Email)]
    pub(crate) email: &'a str,
}

/// Loop-protection flags of an entry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EntryFlags)]
pub(crate) struct FlagsJson {
    /// An automatic reply (`Auto-Submitted`, `Precedence: auto_reply`…).
    pub(crate) auto_reply: bool,
    /// A bounce (delivery status notification).
    pub(crate) bounce: bool,
}

/// A thread entry as the intake read API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Entry)]
struct EntryJson<'a> {
    #[schema(schema_with = schema::entry_kind)]
    kind: &'static str,
    #[schema(schema_with = schema::body_format)]
    format: &'static str,
    /// The body: plain text, or sanitised HTML.
    body: &'a str,
    from: PartyJson<'a>,
    #[schema(value_type = String, format = DateTime)]
    created: String,
    /// The Message-ID, without angle brackets.
    #[schema(required = true)]
    message_id: Option<&'a str>,
    flags: FlagsJson,
    attachments: Vec<AttachmentJson<'a>>,
    /// Email parts left out of the entry (over a size or count cap).
    #[schema(value_type = Vec<DroppedPartSchema>)]
    dropped: &'a [DroppedPart],
}

/// A part of an email left out of its entry (the domain's
/// `DroppedPart`, which serialises itself; the test below keeps the two
/// alike).
#[derive(Debug, ToSchema)]
#[schema(as = DroppedPart)]
#[allow(dead_code)] // A schema only: the wire value is the domain's `DroppedPart`.
pub(crate) struct DroppedPartSchema {
    /// File name.
    name: String,
    /// Size in bytes.
    size: u64,
    /// Why it was left out.
    reason: String,
}

/// A file of an entry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Attachment)]
struct AttachmentJson<'a> {
    name: &'a str,
    /// Media type.
    #[serde(rename = "type")]
    #[schema(example = "text/plain")]
    content_type: &'a str,
    /// Size in bytes.
    size: i64,
    /// SHA-256 of the content, hex.
    sha256: &'a str,
    /// An inline part (shown in the body).
    inline: bool,
    /// The Content-ID, without angle brackets.
    #[schema(required = true)]
    content_id: Option<&'a str>,
}

/// A queued mail (the read API's `notifications`, `outbox list`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub struct NotificationJson<'a> {
    #[schema(schema_with = schema::mail_kind)]
    kind: &'static str,
    #[schema(schema_with = schema::mail_event)]
    event: &'static str,
    #[schema(value_type = Vec<String>)]
    recipients: &'a [String],
    #[schema(schema_with = schema::mail_state)]
    state: &'static str,
    attempts: i64,
    #[schema(required = true)]
    last_error: Option<&'a str>,
    /// The Message-ID it is (or will be) sent with, without angle brackets.
    #[schema(required = true)]
    message_id: Option<&'a str>,
}

pub(crate) fn named(n: &Named) -> NamedJson<'_> {
    NamedJson {
        id: n.id,
        name: &n.name,
    }
}

pub(crate) fn party(p: &Party) -> PartyJson<'_> {
    PartyJson {
        name: &p.name,
        email: &p.email,
    }
}

fn attachment(a: &AttachmentView) -> AttachmentJson<'_> {
    AttachmentJson {
        name: &a.name,
        content_type: &a.content_type,
        size: a.size,
        sha256: &a.sha256,
        inline: a.inline,
        content_id: a.content_id.as_deref(),
    }
}

fn entry(e: &EntryView) -> EntryJson<'_> {
    EntryJson {
        kind: e.kind.as_str(),
        format: e.format.as_str(),
        body: &e.body,
        from: party(&e.from),
        created: format_time(e.created),
        message_id: e.message_id.as_deref(),
        flags: FlagsJson {
            auto_reply: e.flags.auto_reply,
            bounce: e.flags.bounce,
        },
        attachments: e.attachments.iter().map(attachment).collect(),
        dropped: &e.dropped,
    }
}

impl<'a> From<&'a NotificationView> for NotificationJson<'a> {
    fn from(n: &'a NotificationView) -> Self {
        Self {
            kind: n.kind.as_str(),
            event: n.event.as_str(),
            recipients: &n.recipients,
            state: n.state.as_str(),
            attempts: n.attempts,
            last_error: n.last_error.as_deref(),
            message_id: n.message_id.as_deref(),
        }
    }
}

impl<'a> From<&'a TicketView> for TicketJson<'a> {
    fn from(t: &'a TicketView) -> Self {
        Self {
            number: t.number.as_str(),
            subject: &t.subject,
            status: t.status.as_str(),
            source: t.source.as_str(),
            priority: named(&t.priority),
            topic: t.topic.as_ref().map(named),
            department: t.department.as_ref().map(named),
            user: party(&t.user),
            ip: &t.ip,
            created: format_time(t.created),
            fields: &t.fields,
            // Internal notes are staff's: never on the intake read API.
            thread: t
                .thread
                .iter()
                .filter(|e| e.kind != crate::domain::views::EntryKind::Note)
                .map(entry)
                .collect(),
            notifications: t.notifications.iter().map(NotificationJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented `DroppedPart` has the keys the domain's serialises.
    #[test]
    fn dropped_part_schema_matches_the_wire() {
        let part = DroppedPart {
            name: "a.bin".into(),
            size: 1,
            reason: "too large".into(),
        };
        let wire = serde_json::to_value(&part).unwrap();
        let keys: Vec<&String> = wire.as_object().unwrap().keys().collect();
        let schema =
            serde_json::to_value(<DroppedPartSchema as utoipa::PartialSchema>::schema()).unwrap();
        let documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, documented);
    }
}
