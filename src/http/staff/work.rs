//! One ticket's routes (STAFF-API.md, Tickets): the full ticket with its
//! events and `ETag`, `PATCH` with `If-Match`, replies, notes, and
//! attachment downloads. Every route answers `404` for a ticket the agent
//! may not see, whether it exists or not.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use super::auth::Staff;
use crate::app::AppState;
use crate::domain::views::{
    AttachmentView, ChangeEvent, EntryKind, EntryView, TicketView, format_time,
};
use crate::domain::work::{self, WorkError};
use crate::error::ApiError;
use crate::http::openapi::schema;
use crate::http::tickets::read_body;
use crate::http::wire::{FlagsJson, NamedJson, NotificationJson, PartyJson, named, party};
use crate::intake::BodyFormat;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets/{number}", get(show).patch(patch))
        .route("/api/v1/tickets/{number}/replies", post(reply))
        .route("/api/v1/tickets/{number}/notes", post(note))
        .route("/api/v1/attachments/{id}", get(download))
}

impl From<WorkError> for ApiError {
    fn from(e: WorkError) -> Self {
        match e {
            WorkError::NotFound => ApiError::not_found(),
            WorkError::Invalid(d) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, d.to_string()).with_field(d.field())
            }
            WorkError::Malformed(d) => {
                ApiError::new(StatusCode::BAD_REQUEST, d.to_string()).with_field(d.field())
            }
            WorkError::Intake(i) => i.into(),
            WorkError::Store(s) => s.into(),
        }
    }
}

/// The ticket's `ETag`: its version, quoted (a strong validator).
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The version `If-Match` names: `None` without the header or with `*`;
/// a value that is no ETag of ours can never match (412).
fn if_match(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(header::IF_MATCH)?.to_str().unwrap_or("").trim();
    if value == "*" {
        return None;
    }
    let value = value.strip_prefix("W/").unwrap_or(value);
    Some(
        value
            .trim_matches('"')
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .unwrap_or(-1),
    )
}

fn json_response(status: StatusCode, value: &impl Serialize, tag: Option<HeaderValue>) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(tag) = tag {
        headers.insert(header::ETAG, tag);
    }
    response
}

async fn json_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(state, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")).with_field("body")
    })
}

/// The ticket's operations (`http::openapi` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, patch, reply, note, download))]
pub struct WorkDoc;

/// A ticket
///
/// The ticket as the read API shows it, plus its assignee, times, every
/// thread entry (notes included) and its events.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{number}",
    tag = "staff",
    operation_id = "get_ticket",
    params(("number" = String, Path, description = "The ticket number.", example = "123456")),
    responses(
        (status = 200, description = "The ticket.", body = FullTicket, headers(("ETag" = String, description = "The ticket's version, quoted (a strong validator): send it back in `If-Match`."))),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 404, description = "No such ticket, or one the agent may not see."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let view = work::visible_ticket(state.store.as_ref(), &staff.agent, &number).await?;
    Ok(json_response(
        StatusCode::OK,
        &FullTicket::from(&view),
        Some(etag(view.work.version)),
    ))
}

/// The body of `PATCH /api/v1/tickets/{number}` (read by
/// `work::parse_patch`; this type only describes it). Any of the fields;
/// another field is `400`.
#[derive(utoipa::ToSchema)]
#[schema(as = TicketPatch)]
#[allow(dead_code)] // A schema only.
struct PatchSchema {
    #[schema(schema_with = schema::ticket_status, required = false)]
    status: String,
    /// An agent's id, or `null` for nobody.
    #[schema(required = false)]
    assignee_id: Option<i64>,
    /// Moves the ticket to this department (a transfer).
    #[schema(required = false)]
    department_id: i64,
    #[schema(required = false)]
    priority_id: i64,
    #[schema(required = false)]
    topic_id: i64,
}

/// Change a ticket
///
/// Status, assignee, department (a transfer), priority, topic. With
/// `If-Match`, a ticket changed since it was read is not changed (`412`).
#[utoipa::path(
    patch,
    path = "/api/v1/tickets/{number}",
    tag = "staff",
    operation_id = "update_ticket",
    params(
        ("number" = String, Path, description = "The ticket number.", example = "123456"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on (`*` or none: any version)."),
    ),
    request_body = PatchSchema,
    responses(
        (status = 200, description = "The updated ticket.", body = FullTicket, headers(("ETag" = String, description = "The ticket's version, quoted (a strong validator): send it back in `If-Match`."))),
        (status = 400, description = "Malformed JSON, not an object, or an unknown field (named in `field`)."),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 404, description = "No such ticket, or one the agent may not see."),
        (status = 412, description = "The ticket changed since the `If-Match` version."),
        (status = 413, description = "The body is over `max_request_body_bytes`."),
        (status = 422, description = "An unknown id or a value out of range (named in `field`)."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn patch(
    State(state): State<AppState>,
    staff: Staff,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers);
    let json = json_body(&state, &headers, body).await?;
    let req = work::parse_patch(&json)?;
    let view = work::patch_ticket(
        state.store.as_ref(),
        &state.catalog,
        &staff.agent,
        &number,
        &req,
        expected,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &FullTicket::from(&view),
        Some(etag(view.work.version)),
    ))
}

/// The body of `POST /api/v1/tickets/{number}/replies` (read by
/// `work::parse_entry`; this type only describes it).
#[derive(utoipa::ToSchema)]
#[schema(as = ReplyRequest)]
#[allow(dead_code)] // A schema only.
struct ReplySchema {
    /// The text (or HTML, sanitised).
    body: String,
    /// `text` (default) or `html`.
    #[schema(schema_with = schema::body_format)]
    format: Option<String>,
    /// One-key objects, file name → RFC 2397 data URL (as the intake JSON).
    #[schema(value_type = Vec<std::collections::HashMap<String, String>>, required = false)]
    attachments: (),
    /// The ticket's status after the reply.
    #[schema(schema_with = schema::ticket_status)]
    status: Option<String>,
}

/// The body of `POST /api/v1/tickets/{number}/notes`.
#[derive(utoipa::ToSchema)]
#[schema(as = NoteRequest)]
#[allow(dead_code)] // A schema only.
struct NoteSchema {
    body: String,
    /// `text` (default) or `html`.
    #[schema(schema_with = schema::body_format)]
    format: Option<String>,
}

/// Reply to the user
///
/// A response, mailed to the ticket's user (From the department's
/// address with the agent's name, threaded on the user's messages).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{number}/replies",
    tag = "staff",
    operation_id = "reply",
    params(("number" = String, Path, description = "The ticket number.", example = "123456")),
    request_body = ReplySchema,
    responses(
        (status = 201, description = "The new entry.", body = EntryJson, headers(("ETag" = String, description = "The ticket's version, quoted (a strong validator): send it back in `If-Match`."))),
        (status = 400, description = "Malformed JSON, not an object, an unknown field, a bad data URL (named in `field`)."),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 404, description = "No such ticket, or one the agent may not see."),
        (status = 413, description = "The body is over `max_request_body_bytes`, or an attachment over its cap."),
        (status = 422, description = "`body` missing or empty, a bad `format` or `status` (named in `field`)."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn reply(
    state: State<AppState>,
    staff: Staff,
    number: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    add_entry(state, staff, number, headers, body, EntryKind::Response).await
}

/// Add an internal note
///
/// Never mailed to the user; never on the intake read API.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{number}/notes",
    tag = "staff",
    operation_id = "note",
    params(("number" = String, Path, description = "The ticket number.", example = "123456")),
    request_body = NoteSchema,
    responses(
        (status = 201, description = "The new entry.", body = EntryJson, headers(("ETag" = String, description = "The ticket's version, quoted (a strong validator): send it back in `If-Match`."))),
        (status = 400, description = "Malformed JSON, not an object, or an unknown field (named in `field`)."),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 404, description = "No such ticket, or one the agent may not see."),
        (status = 413, description = "The body is over `max_request_body_bytes`."),
        (status = 422, description = "`body` missing or empty, or a bad `format` (named in `field`)."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn note(
    state: State<AppState>,
    staff: Staff,
    number: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    add_entry(state, staff, number, headers, body, EntryKind::Note).await
}

async fn add_entry(
    State(state): State<AppState>,
    staff: Staff,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Body,
    kind: EntryKind,
) -> Result<Response, ApiError> {
    // The ticket first: an agent who may not see it learns nothing from
    // how their body is judged.
    let ticket = work::visible_head(state.store.as_ref(), &staff.agent, &number).await?;
    let json = json_body(&state, &headers, body).await?;
    let req = work::parse_entry(&json, kind == EntryKind::Note, &state.catalog)?;
    let (entry, version) =
        work::add_entry(state.store.as_ref(), &staff.agent, &ticket, kind, req).await?;
    if kind == EntryKind::Response {
        state.intake.stored();
    }
    Ok(json_response(
        StatusCode::CREATED,
        &entry_json(&entry),
        Some(etag(version)),
    ))
}

/// Image types a browser may show inline (no script, no markup).
const INLINE_IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Download an attachment
///
/// The file's bytes: `application/octet-stream` as an attachment, except
/// PNG, JPEG, GIF and WebP images, which are served as themselves, inline.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    tag = "staff",
    operation_id = "download_attachment",
    params(("id" = i64, Path, description = "The attachment's id (its `url` in an entry).")),
    responses(
        (status = 200, description = "The file.",
            content(
                ("application/octet-stream"),
                ("image/png"),
                ("image/jpeg"),
                ("image/gif"),
                ("image/webp"),
            ),
            headers(
                ("Content-Disposition" = String, description = "`attachment` (`inline` for the images) with the file name (RFC 6266: `filename` and `filename*`)."),
                ("X-Content-Type-Options" = String, description = "`nosniff`."),
                ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`."),
                ("Cache-Control" = String, description = "`private, no-cache`."),
            ),
        ),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 404, description = "No such attachment, or one on a ticket the agent may not see."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn download(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    attachment_response(&state, &staff.agent, &id).await
}

/// An attachment `agent` may see, with the safe download headers; `404`
/// otherwise. The staff pages (`/scp/attachments/{id}`) serve files
/// through this too.
pub async fn attachment_response(
    state: &AppState,
    agent: &crate::domain::staff::Agent,
    id: &str,
) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    let file = state
        .store
        .attachment(id)
        .await?
        .filter(|f| agent.may_see(f.department, f.assignee))
        .ok_or_else(ApiError::not_found)?;
    let media = file.content_type.to_ascii_lowercase();
    let media = media.split(';').next().unwrap_or("").trim();
    let inline = INLINE_IMAGES.contains(&media);
    let content_type = if inline {
        media.to_string()
    } else {
        "application/octet-stream".to_string()
    };
    let mut response = (StatusCode::OK, file.data).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        // The stored name is as sent (shown in pages and JSON); the one
        // handed to the browser is cleaned (issue 16 point 5).
        content_disposition(
            if inline { "inline" } else { "attachment" },
            &crate::domain::tickets::download_name(
                &file.name,
                state.catalog.field_limits.max_file_name_chars,
            ),
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// `Content-Disposition` with a file name (RFC 6266): an ASCII fallback
/// in `filename` and the UTF-8 name percent-encoded in `filename*`.
pub fn content_disposition(kind: &str, name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

// ---- the staff API's JSON of a ticket

/// The full ticket: the read API's shape plus the staff side's state,
/// every entry and the events.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StaffTicket)]
pub struct FullTicket<'a> {
    #[schema(example = "123456")]
    number: &'a str,
    subject: &'a str,
    #[schema(schema_with = schema::ticket_status)]
    status: &'static str,
    #[schema(schema_with = schema::source)]
    source: &'static str,
    priority: NamedJson<'a>,
    #[schema(required = true)]
    topic: Option<NamedJson<'a>>,
    #[schema(required = true)]
    department: Option<NamedJson<'a>>,
    /// The agent the ticket is assigned to, `null` for nobody.
    #[schema(required = true)]
    assignee: Option<NamedJson<'a>>,
    user: PartyJson<'a>,
    ip: &'a str,
    #[schema(value_type = String, format = DateTime)]
    created: String,
    #[schema(value_type = String, format = DateTime)]
    updated: String,
    #[schema(value_type = String, format = DateTime)]
    last_message_at: String,
    /// The form fields given with the ticket, normalised (as the read API).
    #[schema(value_type = Object)]
    fields: &'a serde_json::Map<String, Value>,
    /// Every entry: messages, responses and notes, oldest first.
    thread: Vec<EntryJson<'a>>,
    notifications: Vec<NotificationJson<'a>>,
    /// Who did what and when, newest last.
    events: Vec<EventJson>,
}

/// A thread entry as the staff API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StaffEntry)]
struct EntryJson<'a> {
    id: i64,
    #[schema(schema_with = schema::entry_kind)]
    kind: &'static str,
    #[schema(schema_with = schema::body_format)]
    format: &'static str,
    /// Plain text, or sanitised HTML.
    body: String,
    from: PartyJson<'a>,
    /// The agent who wrote it (responses, notes).
    #[schema(required = true)]
    agent_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    created: String,
    /// The Message-ID, without angle brackets.
    #[schema(required = true)]
    message_id: Option<&'a str>,
    flags: FlagsJson,
    attachments: Vec<AttachmentJson<'a>>,
    /// Email parts left out of the entry (over a size or count cap).
    #[schema(value_type = Vec<crate::http::wire::DroppedPartSchema>)]
    dropped: &'a [crate::domain::views::DroppedPart],
}

/// A file of an entry, with where to download it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StaffAttachment)]
struct AttachmentJson<'a> {
    id: i64,
    name: &'a str,
    /// Media type.
    #[serde(rename = "type")]
    content_type: &'a str,
    /// Size in bytes.
    size: i64,
    /// SHA-256 of the content, hex.
    sha256: &'a str,
    inline: bool,
    /// The Content-ID, without angle brackets.
    #[schema(required = true)]
    content_id: Option<&'a str>,
    /// `GET` it for the file.
    #[schema(example = "/api/v1/attachments/7")]
    url: String,
}

/// Something that happened to the ticket.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
struct EventJson {
    /// What: created, assigned, transferred, status changed, priority
    /// changed, replied, noted, mail sent, mail failed.
    #[serde(rename = "type")]
    action: String,
    actor: ActorJson,
    #[schema(value_type = String, format = DateTime)]
    at: String,
    /// The event's particulars (e.g. the old and new status).
    #[schema(value_type = Value)]
    detail: Value,
}

/// Who did something.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Actor)]
struct ActorJson {
    #[schema(schema_with = schema::actor_kind)]
    kind: &'static str,
    /// The agent's id, for an agent.
    #[schema(required = true)]
    id: Option<i64>,
    name: String,
}

fn attachment_json(a: &AttachmentView) -> AttachmentJson<'_> {
    AttachmentJson {
        id: a.id,
        name: &a.name,
        content_type: &a.content_type,
        size: a.size,
        sha256: &a.sha256,
        inline: a.inline,
        content_id: a.content_id.as_deref(),
        url: format!("/api/v1/attachments/{}", a.id),
    }
}

fn entry_json(e: &EntryView) -> EntryJson<'_> {
    EntryJson {
        id: e.id,
        kind: e.kind.as_str(),
        format: e.format.as_str(),
        // Customer HTML was sanitised on the way in; again on the way out.
        body: match e.format {
            BodyFormat::Html => crate::intake::html::sanitize(&e.body),
            BodyFormat::Text => e.body.clone(),
        },
        from: party(&e.from),
        agent_id: e.agent.map(|a| a.0),
        created: format_time(e.created),
        message_id: e.message_id.as_deref(),
        flags: FlagsJson {
            auto_reply: e.flags.auto_reply,
            bounce: e.flags.bounce,
        },
        attachments: e.attachments.iter().map(attachment_json).collect(),
        dropped: &e.dropped,
    }
}

fn event_json(e: ChangeEvent) -> EventJson {
    EventJson {
        actor: ActorJson {
            kind: e.actor.kind(),
            id: e.actor.agent_id().map(|a| a.0),
            name: e.actor.name().to_string(),
        },
        action: e.action,
        at: format_time(e.created),
        detail: e.detail,
    }
}

impl<'a> From<&'a TicketView> for FullTicket<'a> {
    fn from(t: &'a TicketView) -> Self {
        Self {
            number: t.number.as_str(),
            subject: &t.subject,
            status: t.status.as_str(),
            source: t.source.as_str(),
            priority: named(&t.priority),
            topic: t.topic.as_ref().map(named),
            department: t.department.as_ref().map(named),
            assignee: t.work.assignee.as_ref().map(named),
            user: party(&t.user),
            ip: &t.ip,
            created: format_time(t.created),
            updated: format_time(t.work.updated),
            last_message_at: format_time(t.work.last_message_at),
            fields: &t.fields,
            thread: t.thread.iter().map(entry_json).collect(),
            notifications: t.notifications.iter().map(NotificationJson::from).collect(),
            events: work::events(t).into_iter().map(event_json).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_quoted_safely_with_a_utf8_form() {
        let v = content_disposition("attachment", "résumé \"x\".pdf");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"r_sum_ _x_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.pdf"
        );
    }

    #[test]
    fn the_documented_download_types_are_the_served_ones() {
        use utoipa::OpenApi;
        let doc = WorkDoc::openapi();
        let op = doc.paths.paths["/api/v1/attachments/{id}"]
            .get
            .as_ref()
            .unwrap();
        let utoipa::openapi::RefOr::T(ok) = &op.responses.responses["200"] else {
            panic!("200 is a reference");
        };
        let documented: Vec<&str> = ok.content.keys().map(String::as_str).collect();
        let mut served = vec!["application/octet-stream"];
        served.extend(INLINE_IMAGES);
        assert_eq!(documented, served);
    }

    #[test]
    fn if_match_reads_our_etags_and_refuses_others() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
            if_match(&m)
        };
        assert_eq!(h("\"3\""), Some(3));
        assert_eq!(h("W/\"3\""), Some(3));
        assert_eq!(h("*"), None);
        assert_eq!(h("\"abc\""), Some(-1));
        assert_eq!(if_match(&HeaderMap::new()), None);
    }
}
