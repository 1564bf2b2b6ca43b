//! The ticket page: header, thread, events, and the reply, note and
//! controls forms. The forms call `domain::work` like the staff API
//! does: `add_entry` (a reply is mailed; "Reply and resolve" sets the
//! status) and `patch_ticket` with the version the page was rendered at,
//! so a ticket another agent changed first is not written (the API's
//! `412`) and the page shows the current state with `.flash.conflict`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::session::WebStaff;
use super::{
    Fields, Flash, Layout, check_csrf, departments, html, not_found, see_other, show_time,
};
use crate::app::AppState;
use crate::domain::staff::{Actor, AgentId};
use crate::domain::views::{ChangeEvent, EntryKind, TicketStatus, TicketView};
use crate::domain::work::{self, PatchRequest, WorkError};
use crate::intake::BodyFormat;
use crate::storage::StoreError;

/// `?done=` after a successful action: which message to show.
#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "reply" => "Reply sent.",
        "reply_resolve" => "Reply sent and ticket resolved.",
        "note" => "Note added.",
        "update" => "Ticket updated.",
        _ => return None,
    })
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct AttachmentCtx {
    id: i64,
    name: String,
    size: String,
}

#[derive(Serialize)]
struct EntryCtx {
    id: i64,
    kind: &'static str,
    label: &'static str,
    from_name: String,
    from_email: String,
    at: String,
    at_iso: String,
    is_html: bool,
    body: String,
    attachments: Vec<AttachmentCtx>,
}

#[derive(Serialize)]
struct EventCtx {
    kind: String,
    actor: String,
    at: String,
    at_iso: String,
    text: String,
}

#[derive(Serialize)]
struct TicketCtx {
    number: String,
    subject: String,
    status: &'static str,
    priority: String,
    department: String,
    topic: String,
    assignee: String,
    user_name: String,
    user_email: String,
    created: String,
    version: i64,
}

#[derive(Serialize)]
struct TicketPage {
    layout: Layout,
    ticket: TicketCtx,
    entries: Vec<EntryCtx>,
    events: Vec<EventCtx>,
    statuses: Vec<Choice>,
    assignees: Vec<Choice>,
    departments: Vec<Choice>,
    priorities: Vec<Choice>,
    topics: Vec<Choice>,
    reply_body: String,
    note_body: String,
}

fn size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / 1024.0 / 1024.0),
    }
}

fn name_of(detail: &Value) -> String {
    match detail {
        Value::Null => "nobody".into(),
        Value::Object(o) => o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What an event says, in words.
fn event_text(e: &ChangeEvent) -> String {
    let d = &e.detail;
    let from_to = || format!("from {} to {}", name_of(&d["from"]), name_of(&d["to"]));
    match e.action.as_str() {
        "created" => format!(
            "created the ticket ({})",
            d["source"].as_str().unwrap_or("")
        ),
        "assigned" => format!("assigned it {}", from_to()),
        "transferred" => format!("transferred it {}", from_to()),
        "status_changed" => format!("changed the status {}", from_to()),
        "priority_changed" => format!("changed the priority {}", from_to()),
        "topic_changed" => format!("changed the topic {}", from_to()),
        "replied" => "wrote".to_string(),
        "noted" => "added a note".to_string(),
        "mail_sent" | "mail_failed" => {
            let to: Vec<&str> = d["recipients"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let kind = d["kind"].as_str().unwrap_or("mail");
            if e.action == "mail_sent" {
                format!("sent {kind} mail to {}", to.join(", "))
            } else {
                format!(
                    "could not send {kind} mail to {}: {}",
                    to.join(", "),
                    d["error"].as_str().unwrap_or("failed")
                )
            }
        }
        other => other.replace('_', " "),
    }
}

fn choices(items: impl IntoIterator<Item = (String, String)>, current: &str) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

async fn page_ctx(
    state: &AppState,
    staff: &WebStaff,
    view: &TicketView,
    flash: Option<Flash>,
) -> Result<TicketPage, Response> {
    let catalog = &state.catalog;
    let mut layout = Layout::new(
        state,
        staff,
        format!("#{} {}", view.number, view.subject),
        "",
    )
    .await?;
    if let Some(f) = flash {
        layout = layout.flash(f);
    }
    let entries = view
        .thread
        .iter()
        .map(|e| {
            let cids: HashMap<String, i64> = e
                .attachments
                .iter()
                .filter_map(|a| Some((a.content_id.clone()?, a.id)))
                .collect();
            let is_html = e.format == BodyFormat::Html;
            EntryCtx {
                id: e.id,
                kind: e.kind.as_str(),
                label: match e.kind {
                    EntryKind::Message => "Message",
                    EntryKind::Response => "Response",
                    EntryKind::Note => "Internal note",
                },
                from_name: e.from.name.clone(),
                from_email: e.from.email.clone(),
                at: show_time(e.created, catalog),
                at_iso: crate::domain::views::format_time(e.created),
                is_html,
                body: if is_html {
                    super::html::render_customer_html(&e.body, &cids)
                } else {
                    e.body.clone()
                },
                attachments: e
                    .attachments
                    .iter()
                    .map(|a| AttachmentCtx {
                        id: a.id,
                        name: a.name.clone(),
                        size: size(a.size),
                    })
                    .collect(),
            }
        })
        .collect();
    let events = work::events(view)
        .into_iter()
        .map(|e| EventCtx {
            kind: e.action.clone(),
            actor: match &e.actor {
                Actor::System => "oxidesk".to_string(),
                a => a.name().to_string(),
            },
            at: show_time(e.created, catalog),
            at_iso: crate::domain::views::format_time(e.created),
            text: event_text(&e),
        })
        .collect();
    let agents = state
        .web
        .agents
        .get_or_read(state, (), async {
            state.store.list_agents().await.map_err(super::store_failed)
        })
        .await?;
    let current_assignee = view
        .work
        .assignee
        .as_ref()
        .map(|a| a.id.to_string())
        .unwrap_or_default();
    let mut assignees = vec![(String::new(), "— Unassigned —".to_string())];
    assignees.extend(
        agents
            .iter()
            .filter(|a| a.active || a.id.0.to_string() == current_assignee)
            .map(|a| (a.id.0.to_string(), a.name.clone())),
    );
    let mut priorities: Vec<(i64, String)> = catalog
        .priorities
        .values()
        .map(|p| (p.id, p.name.clone()))
        .collect();
    priorities.sort();
    let current_topic = view.topic.as_ref().map(|t| t.id);
    let mut topics: Vec<(i64, String)> = catalog
        .topics
        .values()
        .filter(|t| t.active || Some(t.named.id) == current_topic)
        .map(|t| (t.named.id, t.named.name.clone()))
        .collect();
    topics.sort();
    let mut topic_choices = Vec::new();
    if current_topic.is_none() {
        topic_choices.push((String::new(), "— None —".to_string()));
    }
    topic_choices.extend(topics.into_iter().map(|(id, n)| (id.to_string(), n)));
    let mut department_choices = Vec::new();
    if view.department.is_none() {
        department_choices.push((String::new(), "— None —".to_string()));
    }
    department_choices.extend(
        departments(catalog)
            .into_iter()
            .map(|(id, n)| (id.to_string(), n)),
    );
    let named = |n: &Option<crate::domain::views::Named>| {
        n.as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| "—".into())
    };
    Ok(TicketPage {
        layout,
        ticket: TicketCtx {
            number: view.number.as_str().to_string(),
            subject: view.subject.clone(),
            status: view.status.as_str(),
            priority: view.priority.name.clone(),
            department: named(&view.department),
            topic: named(&view.topic),
            assignee: view
                .work
                .assignee
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| "Unassigned".into()),
            user_name: view.user.name.clone(),
            user_email: view.user.email.clone(),
            created: show_time(view.created, catalog),
            version: view.work.version,
        },
        entries,
        events,
        statuses: choices(
            TicketStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), s.as_str().to_string())),
            view.status.as_str(),
        ),
        assignees: choices(assignees, &current_assignee),
        departments: choices(
            department_choices,
            &view
                .department
                .as_ref()
                .map(|d| d.id.to_string())
                .unwrap_or_default(),
        ),
        priorities: choices(
            priorities.into_iter().map(|(id, n)| (id.to_string(), n)),
            &view.priority.id.to_string(),
        ),
        topics: choices(
            topic_choices,
            &current_topic.map(|t| t.to_string()).unwrap_or_default(),
        ),
        reply_body: String::new(),
        note_body: String::new(),
    })
}

async fn render_page(
    state: &AppState,
    staff: &WebStaff,
    view: &TicketView,
    status: StatusCode,
    flash: Option<Flash>,
    keep: Option<(&str, String)>,
) -> Response {
    let mut ctx = match page_ctx(state, staff, view, flash).await {
        Ok(ctx) => ctx,
        Err(r) => return r,
    };
    match keep {
        Some(("reply", body)) => ctx.reply_body = body,
        Some((_, body)) => ctx.note_body = body,
        None => {}
    }
    match state.web.render("ticket.html", ctx) {
        Ok(body) => html(status, body),
        Err(r) => r,
    }
}

fn work_failed(e: WorkError) -> Response {
    match e {
        WorkError::NotFound => not_found(),
        WorkError::Store(s) => super::store_failed(s),
        other => super::error_page(StatusCode::UNPROCESSABLE_ENTITY, &other.to_string()),
    }
}

/// `GET /scp/tickets/{number}`.
pub async fn page(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(number): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let view = match work::visible_ticket(state.store.as_ref(), &staff.agent, &number).await {
        Ok(v) => v,
        Err(e) => return work_failed(e),
    };
    let flash = done.done.as_deref().and_then(done_message).map(Flash::ok);
    render_page(&state, &staff, &view, StatusCode::OK, flash, None).await
}

/// A reply or note the domain refused (an empty body, a file over its
/// cap): the page again with the message and what was typed.
async fn refused(
    state: &AppState,
    staff: &WebStaff,
    number: &str,
    e: WorkError,
    keep: (&str, String),
) -> Response {
    let status = match &e {
        WorkError::Intake(i) if i.to_string().contains("over") => StatusCode::PAYLOAD_TOO_LARGE,
        WorkError::Invalid(_) | WorkError::Malformed(_) | WorkError::Intake(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => return work_failed(e),
    };
    match work::visible_ticket(state.store.as_ref(), &staff.agent, number).await {
        Ok(view) => {
            render_page(
                state,
                staff,
                &view,
                status,
                Some(Flash::error(e.to_string())),
                Some(keep),
            )
            .await
        }
        Err(e) => work_failed(e),
    }
}

/// `POST /scp/tickets/{number}/reply` (multipart: `csrf`, `body`,
/// `attachments`…, `action` = `reply` | `reply_resolve`).
pub async fn reply(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(number): Path<String>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut fields = Fields::default();
    let mut files: Vec<Value> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return super::error_page(
                    e.status(),
                    &format!("The form could not be read: {}", e.body_text()),
                );
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "attachments" {
            let file_name = field.file_name().unwrap_or("").to_string();
            let media = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = match field.bytes().await {
                Ok(b) => b,
                Err(e) => return super::error_page(e.status(), "The form could not be read."),
            };
            // An empty file input still sends a part without a name.
            if file_name.is_empty() && bytes.is_empty() {
                continue;
            }
            // As the API takes files: an RFC 2397 data URL per name, so
            // that the same parser applies the same caps.
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            files.push(json!({ file_name: format!("data:{media};base64,{data}") }));
        } else {
            match field.text().await {
                Ok(text) => fields.0.push((name, text)),
                Err(e) => return super::error_page(e.status(), "The form could not be read."),
            }
        }
    }
    if let Err(r) = check_csrf(&staff, &headers, &fields) {
        return r;
    }
    let resolve = fields.get("action") == Some("reply_resolve");
    let body = fields.get("body").unwrap_or("").to_string();
    let mut request = json!({ "body": body, "format": "text" });
    if !files.is_empty() {
        request["attachments"] = Value::Array(files);
    }
    if resolve {
        request["status"] = json!("resolved");
    }
    // The ticket first: an agent who may not see it learns nothing else.
    let ticket = match work::visible_head(state.store.as_ref(), &staff.agent, &number).await {
        Ok(t) => t,
        Err(e) => return work_failed(e),
    };
    let req = match work::parse_entry(&request, false, &state.catalog) {
        Ok(r) => r,
        Err(e) => return refused(&state, &staff, &number, e, ("reply", body)).await,
    };
    match work::add_entry(
        state.store.as_ref(),
        &staff.agent,
        &ticket,
        EntryKind::Response,
        req,
    )
    .await
    {
        Ok(_) => {
            state.intake.stored();
            let done = if resolve { "reply_resolve" } else { "reply" };
            see_other(&format!("/scp/tickets/{number}?done={done}"))
        }
        Err(e) => refused(&state, &staff, &number, e, ("reply", body)).await,
    }
}

/// `POST /scp/tickets/{number}/note` (`csrf`, `body`).
pub async fn note(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    if let Err(r) = check_csrf(&staff, &headers, &fields) {
        return r;
    }
    let ticket = match work::visible_head(state.store.as_ref(), &staff.agent, &number).await {
        Ok(t) => t,
        Err(e) => return work_failed(e),
    };
    let body = fields.get("body").unwrap_or("").to_string();
    let request = json!({ "body": body, "format": "text" });
    let req = match work::parse_entry(&request, true, &state.catalog) {
        Ok(r) => r,
        Err(e) => return refused(&state, &staff, &number, e, ("note", body)).await,
    };
    match work::add_entry(
        state.store.as_ref(),
        &staff.agent,
        &ticket,
        EntryKind::Note,
        req,
    )
    .await
    {
        Ok(_) => see_other(&format!("/scp/tickets/{number}?done=note")),
        Err(e) => refused(&state, &staff, &number, e, ("note", body)).await,
    }
}

fn parse_id(fields: &Fields, name: &str) -> Result<Option<i64>, String> {
    match fields.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{name}: not an id")),
    }
}

/// The change the controls ask for, relative to the ticket as it is:
/// only the fields whose value differs (a field left as shown is not
/// touched, so an assignee who was disabled since does not block a
/// status change).
fn patch_of(fields: &Fields, view: &TicketView) -> Result<PatchRequest, String> {
    let mut req = PatchRequest::default();
    if let Some(s) = fields.get("status") {
        let s = TicketStatus::parse(s).ok_or("status must be one of open, resolved, closed")?;
        if s != view.status {
            req.status = Some(s);
        }
    }
    if fields.get("assignee_id").is_some() {
        let wanted = parse_id(fields, "assignee_id")?;
        if wanted != view.work.assignee.as_ref().map(|a| a.id) {
            req.assignee = Some(wanted.map(AgentId));
        }
    }
    if let Some(d) = parse_id(fields, "department_id")?
        && Some(d) != view.department.as_ref().map(|d| d.id)
    {
        req.department = Some(d);
    }
    if let Some(p) = parse_id(fields, "priority_id")?
        && p != view.priority.id
    {
        req.priority = Some(p);
    }
    if let Some(t) = parse_id(fields, "topic_id")?
        && Some(t) != view.topic.as_ref().map(|t| t.id)
    {
        req.topic = Some(t);
    }
    Ok(req)
}

/// The conflict answer: the ticket as it is now, nothing written.
async fn conflict(state: &AppState, staff: &WebStaff, number: &str) -> Response {
    match work::visible_ticket(state.store.as_ref(), &staff.agent, number).await {
        Ok(view) => {
            let flash = Flash {
                kind: "conflict",
                text: "Another agent changed this ticket first. Nothing was saved: these are its current values; make your change again if it still applies.".into(),
            };
            render_page(state, staff, &view, StatusCode::CONFLICT, Some(flash), None).await
        }
        Err(e) => work_failed(e),
    }
}

/// `POST /scp/tickets/{number}/update` (`csrf`, `version`, `status`,
/// `assignee_id`, `department_id`, `priority_id`, `topic_id`).
pub async fn update(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    if let Err(r) = check_csrf(&staff, &headers, &fields) {
        return r;
    }
    let view = match work::visible_ticket(state.store.as_ref(), &staff.agent, &number).await {
        Ok(v) => v,
        Err(e) => return work_failed(e),
    };
    let Some(version) = fields
        .get("version")
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return super::error_page(StatusCode::BAD_REQUEST, "version: missing or not a number");
    };
    if version != view.work.version {
        return conflict(&state, &staff, &number).await;
    }
    let req = match patch_of(&fields, &view) {
        Ok(r) => r,
        Err(message) => {
            return render_page(
                &state,
                &staff,
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Flash::error(message)),
                None,
            )
            .await;
        }
    };
    match work::patch_ticket(
        state.store.as_ref(),
        &state.catalog,
        &staff.agent,
        &number,
        &req,
        Some(version),
    )
    .await
    {
        Ok(after) => {
            let assignee = after.work.assignee.as_ref().map(|a| AgentId(a.id));
            if staff
                .agent
                .may_see(after.department.as_ref().map(|d| d.id), assignee)
            {
                see_other(&format!("/scp/tickets/{number}?done=update"))
            } else {
                // Transferred out of the agent's sight: back to the queue.
                see_other("/scp/")
            }
        }
        Err(WorkError::Store(StoreError::VersionMismatch)) => {
            conflict(&state, &staff, &number).await
        }
        Err(e @ (WorkError::Invalid(_) | WorkError::Malformed(_))) => {
            render_page(
                &state,
                &staff,
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Flash::error(e.to_string())),
                None,
            )
            .await
        }
        Err(e) => work_failed(e),
    }
}

/// `GET /scp/attachments/{id}`: the file with the API download's headers.
pub async fn attachment(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(id): Path<String>,
) -> Response {
    match crate::http::staff::work::attachment_response(&state, &staff.agent, &id).await {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::NOT_FOUND => not_found(),
        Err(e) => e.into_response(),
    }
}
