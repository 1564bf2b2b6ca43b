//! The read API's JSON (API.md, Read a ticket): the wire shape of the
//! domain's views, decided here and nowhere else. Field order is the
//! order API.md shows.

use serde::Serialize;

use crate::domain::views::{
    AttachmentView, DroppedPart, EntryView, Named, NotificationView, Party, TicketView, format_time,
};

/// A ticket.
#[derive(Debug, Serialize)]
pub struct TicketJson<'a> {
    number: &'a str,
    subject: &'a str,
    status: &'static str,
    source: &'static str,
    priority: NamedJson<'a>,
    topic: Option<NamedJson<'a>>,
    department: Option<NamedJson<'a>>,
    user: PartyJson<'a>,
    ip: &'a str,
    created: String,
    fields: &'a serde_json::Map<String, serde_json::Value>,
    thread: Vec<EntryJson<'a>>,
    notifications: Vec<NotificationJson<'a>>,
}

#[derive(Debug, Serialize)]
struct NamedJson<'a> {
    id: i64,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct PartyJson<'a> {
    name: &'a str,
    email: &'a str,
}

#[derive(Debug, Serialize)]
struct FlagsJson {
    auto_reply: bool,
    bounce: bool,
}

#[derive(Debug, Serialize)]
struct EntryJson<'a> {
    kind: &'static str,
    format: &'static str,
    body: &'a str,
    from: PartyJson<'a>,
    created: String,
    message_id: Option<&'a str>,
    flags: FlagsJson,
    attachments: Vec<AttachmentJson<'a>>,
    dropped: &'a [DroppedPart],
}

#[derive(Debug, Serialize)]
struct AttachmentJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    content_type: &'a str,
    size: i64,
    sha256: &'a str,
    inline: bool,
    content_id: Option<&'a str>,
}

/// A queued mail (the read API's `notifications`, `outbox list`).
#[derive(Debug, Serialize)]
pub struct NotificationJson<'a> {
    kind: &'static str,
    event: &'static str,
    recipients: &'a [String],
    state: &'static str,
    attempts: i64,
    last_error: Option<&'a str>,
    message_id: Option<&'a str>,
}

fn named(n: &Named) -> NamedJson<'_> {
    NamedJson {
        id: n.id,
        name: &n.name,
    }
}

fn party(p: &Party) -> PartyJson<'_> {
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
