//! Working one ticket (STAFF-API.md, Tickets): who may touch it, what a
//! change (`PATCH`) does and records, replies and notes, and the rule that
//! a customer's message reopens a resolved or closed ticket. Storage
//! persists what these functions decide; the HTTP handlers and the CLI
//! call the use cases at the bottom.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::DomainError;
use super::catalog::Catalog;
use super::ids::{EmailAddress, TicketNumber};
use super::notify::{MailEvent, MailKind, QueuedMail};
use super::staff::{Actor, Agent, AgentId};
use super::views::{
    AttachmentView, ChangeEvent, EntryFlags, EntryKind, EntryView, Named, Party, TicketHead,
    TicketStatus, TicketView,
};
use crate::intake::{BodyFormat, IntakeError};
use crate::storage::{AddedEntry, NewAttachment, NewEntry, Store, StoreError};

/// Longest body of a reply or note, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a staff operation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkError {
    /// No such ticket, or one the agent may not see (never revealed).
    #[error("not found")]
    NotFound,
    /// A value the request may not carry: 422 naming the field.
    #[error("{0}")]
    Invalid(DomainError),
    /// The request's shape is wrong: 400 naming the field.
    #[error("{0}")]
    Malformed(DomainError),
    /// An attachment could not be decoded or is over a cap.
    #[error("{0}")]
    Intake(IntakeError),
    /// The store failed (a stale `If-Match` is [`StoreError::VersionMismatch`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> WorkError {
    WorkError::Invalid(DomainError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

fn malformed(field: &str, message: impl Into<String>) -> WorkError {
    WorkError::Malformed(DomainError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

/// The status a ticket takes when a message joins it: a person's message
/// reopens a resolved or closed ticket; automatic mail (bounces,
/// auto-replies) never does.
pub fn status_after_message(current: TicketStatus, automatic: bool) -> Option<TicketStatus> {
    match current {
        TicketStatus::Resolved | TicketStatus::Closed if !automatic => Some(TicketStatus::Open),
        _ => None,
    }
}

/// A ticket's fields a change may set (each the full new value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFields {
    /// Status.
    pub status: TicketStatus,
    /// Assignee.
    pub assignee: Option<Named>,
    /// Department.
    pub department: Option<Named>,
    /// Priority.
    pub priority: Named,
    /// Topic.
    pub topic: Option<Named>,
}

impl TicketFields {
    /// The fields of a loaded ticket.
    pub fn of(view: &TicketView) -> Self {
        Self {
            status: view.status,
            assignee: view.work.assignee.clone(),
            department: view.department.clone(),
            priority: view.priority.clone(),
            topic: view.topic.clone(),
        }
    }
}

/// A change to write: the ticket's new fields, the events it records,
/// and the version it was planned on.
#[derive(Debug, Clone)]
pub struct TicketChange {
    /// Row id.
    pub ticket_id: i64,
    /// The version the change was planned on; the write fails with
    /// [`StoreError::VersionMismatch`] when the ticket has moved on.
    pub version: i64,
    /// New values.
    pub fields: TicketFields,
    /// Whether the status changes (sets `status_changed`).
    pub status_changed: bool,
    /// Whether who may see the ticket changes (its department or its
    /// assignee: [`crate::domain::staff::Agent::may_see`]), so an index
    /// that knows it must be written again.
    pub scope_changed: bool,
    /// What it records.
    pub events: Vec<ChangeEvent>,
    /// When.
    pub now: Timestamp,
}

/// A reply or note to write.
#[derive(Debug, Clone)]
pub struct StaffEntry {
    /// Row id of the ticket.
    pub ticket_id: i64,
    /// The entry.
    pub entry: NewEntry,
    /// Mail it queues (a reply: the response to the user).
    pub mail: Vec<QueuedMail>,
    /// A status the reply sets, with its event.
    pub status: Option<(TicketStatus, ChangeEvent)>,
    /// When.
    pub now: Timestamp,
}

/// The fields of a `PATCH` body; each absent field is left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchRequest {
    /// `status`.
    pub status: Option<TicketStatus>,
    /// `assignee_id`: `Some(None)` unassigns.
    pub assignee: Option<Option<AgentId>>,
    /// `department_id`.
    pub department: Option<i64>,
    /// `priority_id`.
    pub priority: Option<i64>,
    /// `topic_id`.
    pub topic: Option<i64>,
}

/// Reads a `PATCH` body: an object of known fields (unknown ones are a
/// 400 naming them, as a typo should not silently do nothing).
pub fn parse_patch(body: &Value) -> Result<PatchRequest, WorkError> {
    let Value::Object(map) = body else {
        return Err(malformed("body", "expected a JSON object"));
    };
    let id = |field: &str, v: &Value| -> Result<i64, WorkError> {
        v.as_i64()
            .ok_or_else(|| invalid(field, format!("{field} must be an integer id")))
    };
    let mut req = PatchRequest::default();
    for (key, v) in map {
        match key.as_str() {
            "status" => {
                let s = v.as_str().and_then(TicketStatus::parse).ok_or_else(|| {
                    invalid("status", "status must be one of open, resolved, closed")
                })?;
                req.status = Some(s);
            }
            "assignee_id" => {
                req.assignee = Some(match v {
                    Value::Null => None,
                    v => Some(AgentId(id("assignee_id", v)?)),
                })
            }
            "department_id" => req.department = Some(id("department_id", v)?),
            "priority_id" => req.priority = Some(id("priority_id", v)?),
            "topic_id" => req.topic = Some(id("topic_id", v)?),
            other => return Err(malformed(other, format!("{other}: unknown field"))),
        }
    }
    Ok(req)
}

/// Plans a change: the new fields and one event per field that really
/// changes. `assignee` is the agent `req.assignee` names, looked up by
/// the caller (`None` when unassigning or not changing it).
pub fn plan_patch(
    view: &TicketView,
    req: &PatchRequest,
    catalog: &Catalog,
    assignee: Option<Named>,
    actor: &Actor,
    now: Timestamp,
) -> Result<TicketChange, WorkError> {
    let before = TicketFields::of(view);
    let mut after = before.clone();
    if let Some(status) = req.status {
        after.status = status;
    }
    if req.assignee.is_some() {
        after.assignee = assignee;
    }
    if let Some(d) = req.department {
        after.department = Some(
            catalog
                .departments
                .get(&d)
                .cloned()
                .ok_or_else(|| invalid("department_id", format!("no department {d}")))?,
        );
    }
    if let Some(p) = req.priority {
        after.priority = catalog
            .priority(p)
            .ok_or_else(|| invalid("priority_id", format!("no priority {p}")))?;
    }
    if let Some(t) = req.topic {
        let topic = catalog
            .topics
            .get(&t)
            .ok_or_else(|| invalid("topic_id", format!("no topic {t}")))?;
        after.topic = Some(topic.named.clone());
    }
    let named = |n: &Option<Named>| match n {
        Some(n) => json!({"id": n.id, "name": n.name}),
        None => Value::Null,
    };
    let mut events = Vec::new();
    let mut event = |action: &str, from: Value, to: Value| {
        events.push(ChangeEvent {
            created: now,
            actor: actor.clone(),
            action: action.into(),
            detail: json!({"from": from, "to": to}),
        })
    };
    if after.assignee != before.assignee {
        event("assigned", named(&before.assignee), named(&after.assignee));
    }
    if after.department != before.department {
        event(
            "transferred",
            named(&before.department),
            named(&after.department),
        );
    }
    if after.status != before.status {
        event(
            "status_changed",
            json!(before.status.as_str()),
            json!(after.status.as_str()),
        );
    }
    if after.priority != before.priority {
        event(
            "priority_changed",
            named(&Some(before.priority.clone())),
            named(&Some(after.priority.clone())),
        );
    }
    if after.topic != before.topic {
        event("topic_changed", named(&before.topic), named(&after.topic));
    }
    Ok(TicketChange {
        ticket_id: view.work.ticket_id,
        version: view.work.version,
        status_changed: after.status != before.status,
        scope_changed: after.assignee != before.assignee || after.department != before.department,
        fields: after,
        events,
        now,
    })
}

/// The event a status change by `actor` records.
pub fn status_event(
    actor: &Actor,
    from: TicketStatus,
    to: TicketStatus,
    now: Timestamp,
) -> ChangeEvent {
    ChangeEvent {
        created: now,
        actor: actor.clone(),
        action: "status_changed".into(),
        detail: json!({"from": from.as_str(), "to": to.as_str()}),
    }
}

/// The body of a reply or note: `body` (required, bounded) and `format`
/// (`text` default, or `html`, sanitised).
pub fn parse_body(map: &serde_json::Map<String, Value>) -> Result<(String, BodyFormat), WorkError> {
    let format = match map.get("format") {
        None | Some(Value::Null) => BodyFormat::Text,
        Some(v) => v
            .as_str()
            .and_then(BodyFormat::parse)
            .ok_or_else(|| invalid("format", "format must be text or html"))?,
    };
    let body = match map.get("body") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid("body", "body is required"));
        }
        Some(_) => return Err(invalid("body", "body must be a string")),
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(
            "body",
            format!("body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    let body = match format {
        BodyFormat::Html => crate::intake::html::sanitize(body),
        BodyFormat::Text => body.clone(),
    };
    Ok((body, format))
}

/// What an agent sends: a reply (mailed to the user) or a note.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    /// Text or sanitised HTML.
    pub body: String,
    /// Its format.
    pub format: BodyFormat,
    /// Files (replies only).
    pub attachments: Vec<NewAttachment>,
    /// The status a reply sets.
    pub status: Option<TicketStatus>,
}

/// Reads a reply (`body`, `format`, `attachments`, `status`) or, with
/// `is_note`, a note (`body`, `format`).
pub fn parse_entry(
    body: &Value,
    is_note: bool,
    catalog: &Catalog,
) -> Result<EntryRequest, WorkError> {
    let Value::Object(map) = body else {
        return Err(malformed("body", "expected a JSON object"));
    };
    let allowed: &[&str] = if is_note {
        &["body", "format"]
    } else {
        &["body", "format", "attachments", "status"]
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(malformed(k, format!("{k}: unknown field")));
    }
    let (text, format) = parse_body(map)?;
    // What intake requires of every text (tickets::check_draft): nothing
    // PostgreSQL refuses or XML excludes, file names within their length.
    super::fields::check_text(&text, usize::MAX).map_err(|e| invalid("body", e))?;
    let mut drafts = Vec::new();
    if let Some(v) = map.get("attachments") {
        crate::intake::json::parse_attachments(v.clone(), &catalog.intake_limits, &mut drafts)
            .map_err(WorkError::Intake)?;
    }
    for a in &drafts {
        super::fields::check_text(&a.name, catalog.field_limits.max_file_name_chars).map_err(
            |e| {
                let shown: String = a.name.chars().take(64).collect();
                invalid("attachments", format!("file name {shown:?}: {e}"))
            },
        )?;
    }
    let status =
        match map.get("status") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(TicketStatus::parse).ok_or_else(|| {
                invalid("status", "status must be one of open, resolved, closed")
            })?),
        };
    Ok(EntryRequest {
        body: text,
        format,
        attachments: super::tickets::stored_attachments(drafts),
        status,
    })
}

/// The entry an agent writes, and the mail a reply queues: the response
/// to the ticket's user, uncapped (a person wrote it).
pub fn plan_entry(
    view: &TicketHead,
    agent: &Agent,
    kind: EntryKind,
    req: EntryRequest,
    now: Timestamp,
) -> Result<StaffEntry, WorkError> {
    let from_email = EmailAddress::parse(&agent.email)
        .map_err(|_| invalid("agent", "the agent's address is not a valid address"))?;
    let mail = if kind == EntryKind::Response {
        vec![QueuedMail {
            kind: MailKind::Response,
            event: MailEvent::Reply,
            recipients: vec![view.user.email.clone()],
            cap: None,
        }]
    } else {
        Vec::new()
    };
    let actor = Actor::Agent {
        id: agent.id,
        name: agent.name.clone(),
    };
    let status = req
        .status
        .filter(|s| *s != view.status)
        .map(|s| (s, status_event(&actor, view.status, s, now)));
    Ok(StaffEntry {
        ticket_id: view.ticket_id,
        entry: NewEntry {
            kind,
            format: req.format,
            body: req.body,
            from_name: agent.name.clone(),
            from_email,
            message_id: None,
            auto_reply: false,
            bounce: false,
            attachments: req.attachments,
            dropped: Vec::new(),
            agent: Some(agent.id),
        },
        mail,
        status,
        now,
    })
}

/// The head of a ticket `agent` may see, else `NotFound` (whether it
/// exists or not): what a reply or note needs before it is written.
pub async fn visible_head(
    store: &dyn Store,
    agent: &Agent,
    number: &str,
) -> Result<TicketHead, WorkError> {
    let number = TicketNumber::parse(number).ok_or(WorkError::NotFound)?;
    let head = store
        .ticket_head(number)
        .await?
        .ok_or(WorkError::NotFound)?;
    if may_see(agent, head.department.as_ref(), head.assignee.as_ref()) {
        Ok(head)
    } else {
        Err(WorkError::NotFound)
    }
}

/// Whether `agent` may see a ticket of `department` assigned to `assignee`.
fn may_see(agent: &Agent, department: Option<&Named>, assignee: Option<&Named>) -> bool {
    agent.may_see(department.map(|d| d.id), assignee.map(|a| AgentId(a.id)))
}

/// The ticket `agent` may see, else `NotFound` (whether it exists or not).
pub async fn visible_ticket(
    store: &dyn Store,
    agent: &Agent,
    number: &str,
) -> Result<TicketView, WorkError> {
    let number = TicketNumber::parse(number).ok_or(WorkError::NotFound)?;
    let view = store
        .load_ticket(number)
        .await?
        .ok_or(WorkError::NotFound)?;
    if may_see(agent, view.department.as_ref(), view.work.assignee.as_ref()) {
        Ok(view)
    } else {
        Err(WorkError::NotFound)
    }
}

/// How often a change without `If-Match` is planned again when another
/// change lands between its read and its write.
const PATCH_ATTEMPTS: usize = 5;

/// `PATCH`: applies `req` as `agent`. With `if_match` (the `ETag` the
/// client read) a ticket changed since is a `VersionMismatch` (412);
/// without, the change is planned again on the new state.
pub async fn patch_ticket(
    store: &dyn Store,
    catalog: &Catalog,
    agent: &Agent,
    number: &str,
    req: &PatchRequest,
    if_match: Option<i64>,
) -> Result<TicketView, WorkError> {
    let assignee = match req.assignee {
        Some(Some(id)) => Some(
            store
                .agent_name(id)
                .await?
                .map(|name| Named { id: id.0, name })
                .ok_or_else(|| invalid("assignee_id", format!("no active agent {id}")))?,
        ),
        _ => None,
    };
    let actor = Actor::Agent {
        id: agent.id,
        name: agent.name.clone(),
    };
    for _ in 0..PATCH_ATTEMPTS {
        let view = visible_ticket(store, agent, number).await?;
        if if_match.is_some_and(|v| v != view.work.version) {
            return Err(StoreError::VersionMismatch.into());
        }
        let change = plan_patch(
            &view,
            req,
            catalog,
            assignee.clone(),
            &actor,
            Timestamp::now(),
        )?;
        if change.events.is_empty() {
            return Ok(view);
        }
        match store.change_ticket(change).await {
            Ok(()) => return reload(store, number).await,
            Err(StoreError::VersionMismatch) if if_match.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Busy("the ticket kept changing; try again".into()).into())
}

/// The ticket after a change: an agent who just transferred it away may
/// no longer see it; they get what they wrote anyway (their own change).
async fn reload(store: &dyn Store, number: &str) -> Result<TicketView, WorkError> {
    let number = TicketNumber::parse(number).ok_or(WorkError::NotFound)?;
    store.load_ticket(number).await?.ok_or(WorkError::NotFound)
}

/// Adds a reply (`EntryKind::Response`) or note as `agent` to `head`,
/// the ticket [`visible_head`] gave that agent (callers look it up
/// first, before judging the body, so that an agent who may not see it
/// learns nothing else); returns the entry as stored and the ticket's
/// new version. Neither read nor written: the thread (a reply's cost
/// does not grow with it).
pub async fn add_entry(
    store: &dyn Store,
    agent: &Agent,
    head: &TicketHead,
    kind: EntryKind,
    req: EntryRequest,
) -> Result<(EntryView, i64), WorkError> {
    let entry = plan_entry(head, agent, kind, req, Timestamp::now())?;
    let mut view = entry_view(&entry.entry, entry.now);
    let added = store.add_staff_entry(entry).await?;
    with_ids(&mut view, &added);
    Ok((view, added.version))
}

/// Gives `view` (of an entry just written) the ids the store gave it.
/// Never fails: the entry is committed by now, and an error would make
/// a client post it again.
fn with_ids(view: &mut EntryView, added: &AddedEntry) {
    if added.files.len() != view.attachments.len() {
        tracing::error!(
            entry = added.id,
            files = view.attachments.len(),
            ids = added.files.len(),
            "the store gave a different number of file ids than files"
        );
    }
    view.id = added.id;
    for (a, id) in view.attachments.iter_mut().zip(&added.files) {
        a.id = *id;
    }
}

/// The view of an entry as it will be stored, before the store has
/// given it ids (0 until [`with_ids`]); times to the second, as stored.
fn entry_view(e: &NewEntry, created: Timestamp) -> EntryView {
    let created = Timestamp::from_second(created.as_second()).unwrap_or(created);
    EntryView {
        id: 0,
        agent: e.agent,
        kind: e.kind,
        format: e.format,
        body: e.body.clone(),
        from: Party {
            name: e.from_name.clone(),
            email: e.from_email.as_str().to_string(),
        },
        created,
        message_id: e.message_id.clone(),
        flags: EntryFlags {
            auto_reply: e.auto_reply,
            bounce: e.bounce,
        },
        attachments: e
            .attachments
            .iter()
            .map(|a| AttachmentView {
                id: 0,
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.data.len() as i64,
                sha256: hex::encode(a.sha256),
                inline: a.inline,
                content_id: a.content_id.clone(),
            })
            .collect(),
        dropped: e.dropped.clone(),
    }
}

/// Every event of a ticket, oldest first: its creation, each later
/// entry (a user's message or an agent's reply: `replied`; a note:
/// `noted`), the stored changes, and its mail (`mail_sent`,
/// `mail_failed`). Only changes are stored as events; the others are
/// read from what the ticket already holds.
pub fn events(view: &TicketView) -> Vec<ChangeEvent> {
    let mut out = Vec::with_capacity(view.thread.len() + view.work.changes.len() + 1);
    let user = |name: &str| Actor::User { name: name.into() };
    out.push(ChangeEvent {
        created: view.created,
        actor: user(&view.user.name),
        action: "created".into(),
        detail: json!({"source": view.source.as_str()}),
    });
    for e in view.thread.iter().skip(1) {
        let actor = match e.agent {
            Some(id) => Actor::Agent {
                id,
                name: e.from.name.clone(),
            },
            None => user(&e.from.name),
        };
        let action = if e.kind == EntryKind::Note {
            "noted"
        } else {
            "replied"
        };
        out.push(ChangeEvent {
            created: e.created,
            actor,
            action: action.into(),
            detail: json!({"entry_id": e.id, "kind": e.kind.as_str()}),
        });
    }
    out.extend(view.work.changes.iter().cloned());
    for n in &view.notifications {
        let (action, at) = match n.state {
            super::views::MailState::Sent => ("mail_sent", n.sent_at),
            super::views::MailState::Failed => ("mail_failed", n.created_at),
            _ => continue,
        };
        let Some(created) = at.and_then(|t| Timestamp::from_second(t).ok()) else {
            continue;
        };
        out.push(ChangeEvent {
            created,
            actor: Actor::System,
            action: action.into(),
            detail: json!({"kind": n.kind.as_str(), "recipients": n.recipients,
                           "error": n.last_error}),
        });
    }
    // Stable: what happened in one second keeps the order above.
    out.sort_by_key(|e| e.created);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persons_message_reopens_automatic_mail_never_does() {
        use TicketStatus::*;
        assert_eq!(status_after_message(Resolved, false), Some(Open));
        assert_eq!(status_after_message(Closed, false), Some(Open));
        assert_eq!(status_after_message(Open, false), None);
        assert_eq!(status_after_message(Closed, true), None);
        assert_eq!(status_after_message(Resolved, true), None);
    }

    #[test]
    fn a_patch_names_its_bad_field() {
        let err = |v: Value| match parse_patch(&v) {
            Err(WorkError::Invalid(e)) => (422, e.field().to_string()),
            Err(WorkError::Malformed(e)) => (400, e.field().to_string()),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(json!({"status": "archived"})), (422, "status".into()));
        assert_eq!(
            err(json!({"assignee_id": "x"})),
            (422, "assignee_id".into())
        );
        assert_eq!(err(json!({"colour": 1})), (400, "colour".into()));
        assert_eq!(err(json!([1])), (400, "body".into()));
        let ok = parse_patch(&json!({"assignee_id": null, "status": "closed"})).unwrap();
        assert_eq!(ok.assignee, Some(None));
        assert_eq!(ok.status, Some(TicketStatus::Closed));
        assert_eq!(ok.department, None);
    }
}
