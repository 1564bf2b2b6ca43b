//! Read models: what a ticket, its thread and its mail look like to the
//! helpdesk, typed. Storage fills them; `http` decides their JSON (the
//! read API's wire shape is `http::wire`'s), the CLI prints them.

use jiff::Timestamp;

pub use super::ids::{ApiKeyId, EmailAddress, TicketNumber};
pub use super::notify::{MailEvent, MailKind};
pub use crate::intake::BodyFormat;

/// Declares a closed set of names stored as text: `as_str` for writing,
/// `parse` for reading back, `Display` for people.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// Its stored and shown name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value of a stored name.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What a thread entry is.
    EntryKind {
        /// From the user (or anyone but staff).
        Message = "message",
        /// An agent's answer, mailed to the user.
        Response = "response",
        /// An agent's internal note, never mailed to the user.
        Note = "note",
    }
}

named_enum! {
    /// How a ticket came in (osTicket's sources).
    Source {
        /// The API (JSON, XML).
        Api = "API",
        /// Email (the pipe, `.email`).
        Email = "Email",
        /// Phone.
        Phone = "Phone",
        /// Web form.
        Web = "Web",
        /// Anything else.
        Other = "Other",
    }
}

impl Source {
    /// The source a request names, matched case-insensitively (osTicket).
    pub fn parse_lenient(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

named_enum! {
    /// Where a ticket stands.
    TicketStatus {
        /// Waiting for the helpdesk.
        Open = "open",
        /// Answered; reopens when the user writes again.
        Resolved = "resolved",
        /// Done; reopens when the user writes again.
        Closed = "closed",
    }
}

named_enum! {
    /// Where an outgoing mail stands.
    MailState {
        /// Waiting to be sent (or to be retried).
        Queued = "queued",
        /// Claimed by a sender.
        Sending = "sending",
        /// Accepted by the relay: never sent again.
        Sent = "sent",
        /// Given up.
        Failed = "failed",
    }
}

/// Id and name (priority, topic, department) as stored with a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Id.
    pub id: i64,
    /// Name at the time the ticket was made.
    pub name: String,
}

/// Name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// Name.
    pub name: String,
    /// Address.
    pub email: String,
}

/// A file of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    /// Row id (`GET /api/v1/attachments/{id}`).
    pub id: i64,
    /// File name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Shown inline.
    pub inline: bool,
    /// Content-ID.
    pub content_id: Option<String>,
}

/// A part of an email left out of its entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DroppedPart {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Why it was left out.
    pub reason: String,
}

/// Loop-protection flags of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFlags {
    /// Auto-reply.
    pub auto_reply: bool,
    /// Bounce.
    pub bounce: bool,
}

/// A thread entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView {
    /// Row id.
    pub id: i64,
    /// The agent who wrote it (responses, notes).
    pub agent: Option<super::staff::AgentId>,
    /// What it is.
    pub kind: EntryKind,
    /// Text or html.
    pub format: BodyFormat,
    /// Body.
    pub body: String,
    /// Sender.
    pub from: Party,
    /// When.
    pub created: Timestamp,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Flags.
    pub flags: EntryFlags,
    /// Files.
    pub attachments: Vec<AttachmentView>,
    /// Email parts left out of the entry (too large, too many).
    pub dropped: Vec<DroppedPart>,
}

/// A ticket with its thread and mail.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketView {
    /// Number.
    pub number: TicketNumber,
    /// Subject.
    pub subject: String,
    /// Status.
    pub status: TicketStatus,
    /// Source.
    pub source: Source,
    /// Priority.
    pub priority: Named,
    /// Topic.
    pub topic: Option<Named>,
    /// Department.
    pub department: Option<Named>,
    /// Requester.
    pub user: Party,
    /// Client IP.
    pub ip: String,
    /// When.
    pub created: Timestamp,
    /// Form values by field name, normalised (API.md, Read a ticket).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Thread, oldest first.
    pub thread: Vec<EntryView>,
    /// Mail queued for it and its state.
    pub notifications: Vec<NotificationView>,
    /// The staff side's state of it.
    pub work: WorkState,
}

/// What working a ticket needs before a write: who may see it, its
/// state, the user a reply goes to, its version. One row: a reply or
/// note reads this, not the thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketHead {
    /// Row id.
    pub ticket_id: i64,
    /// Number.
    pub number: TicketNumber,
    /// Status.
    pub status: TicketStatus,
    /// Department.
    pub department: Option<Named>,
    /// The agent it is assigned to.
    pub assignee: Option<Named>,
    /// Requester.
    pub user: Party,
    /// Bumped by every change: its `ETag`.
    pub version: i64,
}

impl TicketView {
    /// The ticket's head.
    pub fn head(&self) -> TicketHead {
        TicketHead {
            ticket_id: self.work.ticket_id,
            number: self.number.clone(),
            status: self.status,
            department: self.department.clone(),
            assignee: self.work.assignee.clone(),
            user: self.user.clone(),
            version: self.work.version,
        }
    }
}

/// A ticket's state as staff work it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkState {
    /// Row id.
    pub ticket_id: i64,
    /// The agent it is assigned to.
    pub assignee: Option<Named>,
    /// Its last change of any kind.
    pub updated: Timestamp,
    /// The user's last message.
    pub last_message_at: Timestamp,
    /// When it was last resolved, closed or reopened.
    pub status_changed: Option<Timestamp>,
    /// Bumped by every change: its `ETag`.
    pub version: i64,
    /// Stored change events (assigned, transferred, status, priority,
    /// topic), oldest first; the others are read from the ticket.
    pub changes: Vec<ChangeEvent>,
}

/// A stored change of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// When.
    pub created: Timestamp,
    /// Who.
    pub actor: super::staff::Actor,
    /// What (`assigned`, `transferred`, `status_changed`, …).
    pub action: String,
    /// From and to, as JSON.
    pub detail: serde_json::Value,
}

/// A queued mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationView {
    /// What it is.
    pub kind: MailKind,
    /// What it is about.
    pub event: MailEvent,
    /// Addresses.
    pub recipients: Vec<String>,
    /// Where it stands.
    pub state: MailState,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Message-ID of the outgoing mail; none while the mail waits to be
    /// taken by the sender (SQLite makes it then).
    pub message_id: Option<String>,
    /// When the relay accepted it (unix seconds), for the ticket's events.
    pub sent_at: Option<i64>,
    /// When it was queued (unix seconds), for the ticket's events.
    pub created_at: Option<i64>,
}

/// One line of `outbox list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Row id.
    pub id: i64,
    /// Ticket number.
    pub number: TicketNumber,
    /// The mail.
    pub notification: NotificationView,
}

/// One line of `ticket list`.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSummary {
    /// Number.
    pub number: TicketNumber,
    /// Subject.
    pub subject: String,
    /// Status.
    pub status: TicketStatus,
    /// Requester's address.
    pub user_email: String,
    /// When.
    pub created: Timestamp,
}

/// A time as the wire and the database write it: RFC 3339, UTC, seconds.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sources_match_any_case() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Source::parse_lenient(" email "), Some(Source::Email));
        assert_eq!(Source::parse("email"), None);
        for s in MailState::ALL {
            assert_eq!(MailState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(format!("{:<8}|", MailState::Sent), "sent    |");
    }

    #[test]
    fn times_are_written_in_utc_seconds() {
        let t: Timestamp = "2026-11-28T10:00:00.7+01:00".parse().unwrap();
        assert_eq!(format_time(t), "2026-11-28T09:00:00Z");
    }
}
