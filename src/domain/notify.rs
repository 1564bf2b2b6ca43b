//! The mail rules: which mail an event (a new ticket, a reply) queues, to
//! whom, and under which caps. Storage persists what these rules decide
//! ([`QueuedMail`]) in the event's own transaction and enforces the caps
//! with its window counts; it decides nothing itself.
//!
//! Adding a kind of mail (a staff reply, a webhook): a variant of
//! [`MailKind`] with its index and name, its rule in [`MailRules::plan`]
//! (or its own use case), and its templates in `mail_out`; no backend SQL
//! changes, since every backend stores kinds by name and index.

use std::collections::HashMap;
use std::sync::Arc;

/// A kind of outgoing mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// To the ticket's user: "we received your request" (osTicket's
    /// new-ticket autoresponse).
    Autoresponse,
    /// To the department's staff: a new ticket or a reply.
    Alert,
    /// To the ticket's user: an agent's reply (written by a person).
    Response,
}

impl MailKind {
    /// Every kind, in index order.
    pub const ALL: [MailKind; 3] = [MailKind::Autoresponse, MailKind::Alert, MailKind::Response];

    /// Its index: an entry's mail of this kind has outbox id
    /// `entry id * OUTBOX_IDS_PER_ENTRY + index`, and bit `1 << index` in
    /// SQLite's `thread_entries.notify`. Below
    /// `storage::OUTBOX_IDS_PER_ENTRY`; never reused.
    pub fn index(self) -> i64 {
        match self {
            MailKind::Autoresponse => 0,
            MailKind::Alert => 1,
            MailKind::Response => 2,
        }
    }

    /// Its name, as stored and shown (`outbox.kind`, the read API).
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Autoresponse => "autoresponse",
            MailKind::Alert => "alert",
            MailKind::Response => "response",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The kind of an index.
    pub fn from_index(index: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.index() == index)
    }

    /// Whether it is automatic mail in RFC 3834's sense, answering a
    /// message (`Auto-Submitted: auto-replied`) rather than generated
    /// on an event (`auto-generated`).
    pub fn is_reply_to_message(self) -> bool {
        matches!(self, MailKind::Autoresponse)
    }

    /// Whether a person wrote it (no `Auto-Submitted`, no robot headers).
    pub fn is_personal(self) -> bool {
        matches!(self, MailKind::Response)
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for MailEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailEvent {
    /// The ticket was opened.
    New,
    /// A message was added to it.
    Reply,
}

impl MailEvent {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MailEvent::New => "new",
            MailEvent::Reply => "reply",
        }
    }

    /// The event of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "new" => Some(MailEvent::New),
            "reply" => Some(MailEvent::Reply),
            _ => None,
        }
    }
}

/// Whose mail a cap counts, per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapScope {
    /// The ticket's user: one hourly counter per user for all capped
    /// mail to them (a mail loop with a robot is per address).
    User,
    /// The ticket: mail of the same kind queued by its entries.
    Ticket,
}

/// A cap: at most `limit` mails in the hour before this one (this one
/// included), counted over `scope`. A mail over its cap is not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// What is counted.
    pub scope: CapScope,
    /// Most mails per hour.
    pub limit: u32,
}

/// The length of a cap's window.
pub const CAP_WINDOW_SECS: i64 = 3600;

/// One mail to queue with a write, recipients resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// What it is.
    pub kind: MailKind,
    /// What it is about.
    pub event: MailEvent,
    /// Addresses.
    pub recipients: Vec<String>,
    /// Queued only under this cap.
    pub cap: Option<Cap>,
}

/// What the rules need to know about an event.
#[derive(Debug, Clone, Copy)]
pub struct MailFacts<'a> {
    /// New ticket or reply.
    pub event: MailEvent,
    /// The message is automatic (a bounce, an auto-reply): it queues no
    /// mail at all (osTicket: "Don't send alerts to staff when the
    /// message is a bounce … avoid possible loop").
    pub automatic: bool,
    /// The request's `autorespond` flag (API.md).
    pub autorespond: bool,
    /// The request's `alert` flag (API.md).
    pub alert: bool,
    /// The ticket's department.
    pub department: Option<i64>,
    /// The ticket's user.
    pub user_email: &'a str,
}

/// The configured mail rules (from `[mail]` and the departments).
#[derive(Debug, Clone, Default)]
pub struct MailRules {
    /// `mail.autoresponse_limit_per_hour`.
    pub autoresponse_limit_per_hour: u32,
    /// `mail.alert_limit_per_ticket_per_hour`.
    pub alert_limit_per_ticket_per_hour: u32,
    /// Alert recipients by department id.
    pub alert_recipients: Arc<HashMap<i64, Vec<String>>>,
    /// `mail.reply_separator`: a customer's answer is cut there.
    pub reply_separator: String,
}

impl MailRules {
    /// The mail an event queues:
    /// * automatic mail queues nothing (no robot answers a robot, no
    ///   bounce alerts anyone);
    /// * a new ticket: an autoresponse to its user (when `autorespond`),
    ///   at most `autoresponse_limit_per_hour` per user;
    /// * a new ticket or a reply: an alert to its department's
    ///   recipients (when `alert` and there are any), at most
    ///   `alert_limit_per_ticket_per_hour` per ticket (the fence that
    ///   ends any loop the first rule misses).
    pub fn plan(&self, facts: &MailFacts<'_>) -> Vec<QueuedMail> {
        let mut mail = Vec::new();
        if facts.automatic {
            return mail;
        }
        if facts.event == MailEvent::New && facts.autorespond {
            mail.push(QueuedMail {
                kind: MailKind::Autoresponse,
                event: facts.event,
                recipients: vec![facts.user_email.to_string()],
                cap: Some(Cap {
                    scope: CapScope::User,
                    limit: self.autoresponse_limit_per_hour,
                }),
            });
        }
        if facts.alert
            && let Some(recipients) = facts.department.and_then(|d| self.alert_recipients.get(&d))
            && !recipients.is_empty()
        {
            mail.push(QueuedMail {
                kind: MailKind::Alert,
                event: facts.event,
                recipients: recipients.clone(),
                cap: Some(Cap {
                    scope: CapScope::Ticket,
                    limit: self.alert_limit_per_ticket_per_hour,
                }),
            });
        }
        mail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> MailRules {
        MailRules {
            autoresponse_limit_per_hour: 5,
            alert_limit_per_ticket_per_hour: 10,
            alert_recipients: Arc::new([(1, vec!["staff@x.org".to_string()])].into()),
            reply_separator: "-- reply above this line --".into(),
        }
    }

    fn facts(event: MailEvent, automatic: bool, department: Option<i64>) -> MailFacts<'static> {
        MailFacts {
            event,
            automatic,
            autorespond: true,
            alert: true,
            department,
            user_email: "u@x.org",
        }
    }

    fn kinds(mail: &[QueuedMail]) -> Vec<(&'static str, &'static str)> {
        mail.iter()
            .map(|m| (m.kind.as_str(), m.event.as_str()))
            .collect()
    }

    #[test]
    fn a_new_ticket_queues_an_autoresponse_and_an_alert_under_their_caps() {
        let mail = rules().plan(&facts(MailEvent::New, false, Some(1)));
        assert_eq!(kinds(&mail), [("autoresponse", "new"), ("alert", "new")]);
        assert_eq!(mail[0].recipients, ["u@x.org"]);
        assert_eq!(
            mail[0].cap,
            Some(Cap {
                scope: CapScope::User,
                limit: 5
            })
        );
        assert_eq!(mail[1].recipients, ["staff@x.org"]);
        assert_eq!(
            mail[1].cap.map(|c| (c.scope, c.limit)),
            Some((CapScope::Ticket, 10))
        );
    }

    #[test]
    fn a_reply_alerts_staff_only() {
        let mail = rules().plan(&facts(MailEvent::Reply, false, Some(1)));
        assert_eq!(kinds(&mail), [("alert", "reply")]);
    }

    #[test]
    fn automatic_mail_queues_nothing() {
        for event in [MailEvent::New, MailEvent::Reply] {
            assert!(rules().plan(&facts(event, true, Some(1))).is_empty());
        }
    }

    #[test]
    fn no_recipients_or_flags_off_queue_no_alert() {
        assert_eq!(
            kinds(&rules().plan(&facts(MailEvent::New, false, Some(2)))),
            [("autoresponse", "new")]
        );
        let mut f = facts(MailEvent::New, false, Some(1));
        f.autorespond = false;
        f.alert = false;
        assert!(rules().plan(&f).is_empty());
    }

    #[test]
    fn kinds_round_trip_by_name_and_index() {
        for k in MailKind::ALL {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
            assert_eq!(MailKind::from_index(k.index()), Some(k));
            assert!(k.index() < crate::storage::OUTBOX_IDS_PER_ENTRY);
        }
        assert_eq!(MailKind::parse("nope"), None);
        assert_eq!(MailEvent::parse("reply"), Some(MailEvent::Reply));
    }
}
