//! The OpenAPI 3.1 document of every route (STAFF-API.md, `GET
//! /api/openapi.json`), generated from the code: the handlers'
//! `#[utoipa::path]` annotations (`http::tickets`, `http::staff::*`) and
//! the wire types' `ToSchema` derives. Built once, served as is, printed by
//! `oxidesk openapi`, and checked in as `docs/openapi.json` (the snapshot
//! test fails when the two differ).
//!
//! What is uniform is added here, by one rule each, rather than repeated
//! on every operation: the error bodies (text/plain or the JSON envelope
//! on the intake routes, always JSON under `/api/v1`: the same rule as
//! `http::layer`), `Retry-After` on a `503`, a `500` on every operation,
//! and the two security schemes. This module must not serve anything but
//! the document.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Ref, RefOr, Response as OaResponse};

use super::wire::{NamedJson, PartyJson};
use crate::app::AppState;

/// The security scheme of the intake routes: `X-API-Key`.
pub const API_KEY: &str = "apiKey";
/// The security scheme of the staff routes: `Authorization: Bearer`.
pub const BEARER: &str = "bearerAuth";

/// The document's own route (no credentials).
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

/// This document
///
/// The OpenAPI 3.1 document of every route; no credentials needed.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json", body = Object),
    ),
)]
async fn serve() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json(),
    )
        .into_response()
}

/// The routes of this module and the doc-only ones below.
#[derive(OpenApi)]
#[openapi(paths(serve, queue_list, queue_counts))]
struct MetaDoc;

/// The document, built on first use.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as pretty JSON with a final newline (what is served,
/// printed and checked in).
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Plain data (strings, numbers, maps with string keys): cannot fail.
        let mut text = serde_json::to_string_pretty(document()).unwrap_or_default();
        text.push('\n');
        text
    })
}

fn build() -> utoipa::openapi::OpenApi {
    let mut doc = MetaDoc::openapi();
    doc.merge(super::tickets::IntakeDoc::openapi());
    doc.merge(super::staff::auth::AuthDoc::openapi());
    doc.merge(super::staff::work::WorkDoc::openapi());
    doc.merge(super::ops::OpsDoc::openapi());
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("oxidesk")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .license(Some(
            utoipa::openapi::LicenseBuilder::new()
                .name(env!("CARGO_PKG_LICENSE"))
                .build(),
        ))
        .build();
    doc.tags = Some(vec![
        tag("intake", INTAKE_TAG),
        tag(
            "staff",
            "The staff API (STAFF-API.md): sign-in, queues, one ticket's work. Errors are always the JSON envelope.",
        ),
        tag("meta", "This document."),
        tag(
            "operations",
            "Health, readiness and metrics for the operator: no credentials, not rate limited.",
        ),
    ]);
    let components = doc.components.take().unwrap_or_default();
    let mut components = ComponentsBuilder::from(components)
        .security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`oxidesk key add`), bound to source addresses, with \
                 `can_create_tickets` and/or `can_read_tickets`.",
            ))),
        )
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token (`POST /api/v1/session`) or a personal access \
                         token (`oxidesk agent token`).",
                    ))
                    .build(),
            ),
        )
        .build();
    let error: RefOr<utoipa::openapi::schema::Schema> = Ref::from_schema_name("Error").into();
    components.schemas.insert(
        "Error".to_string(),
        <crate::error::ErrorEnvelope as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "ErrorDetail".to_string(),
        <crate::error::ErrorDetail as utoipa::PartialSchema>::schema(),
    );
    doc.components = Some(components);
    for (path, item) in doc.paths.paths.iter_mut() {
        let always_json = super::layer::errors_always_json(path);
        for op in operations(item) {
            if op.request_body.is_some() {
                // The connection layer's body deadline (`[server]
                // body_timeout_secs`, `body_min_bytes_per_sec`).
                op.responses
                    .responses
                    .entry("408".to_string())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description("The request body did not arrive in time (`[server] body_timeout_secs` plus 1 s per `body_min_bytes_per_sec` bytes); the connection is closed. Nothing was stored: send it again.")
                            .into()
                    });
            }
            op.responses
                .responses
                .entry("500".to_string())
                .or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("A fault of the server: an opaque message naming the request id (`X-Request-Id`).")
                        .into()
                });
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(response) = response {
                    finish_error(status, response, always_json, &error);
                }
            }
        }
    }
    doc
}

/// Gives an error answer its bodies and a `503` its `Retry-After`.
fn finish_error(
    status: &str,
    response: &mut OaResponse,
    always_json: bool,
    error: &RefOr<utoipa::openapi::schema::Schema>,
) {
    if !status.starts_with('4') && !status.starts_with('5') {
        return;
    }
    if response.content.is_empty() {
        if !always_json {
            response.content.insert(
                "text/plain".to_string(),
                ContentBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .description(Some("The message (the default)."))
                            .build(),
                    ))
                    .build()
                    .into(),
            );
        }
        response.content.insert(
            "application/json".to_string(),
            ContentBuilder::new()
                .schema(Some(error.clone()))
                .build()
                .into(),
        );
    }
    if status == "503" {
        response
            .headers
            .entry("Retry-After".to_string())
            .or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer)
                            .minimum(Some(0)),
                    ))
                    .description(Some(
                        "Seconds to wait: sent when the store was busy (a passing condition), \
                         not when the 503 is a setting (email intake off).",
                    ))
                    .build()
                    .into()
            });
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn tag(name: &str, description: &str) -> utoipa::openapi::tag::Tag {
    utoipa::openapi::tag::TagBuilder::new()
        .name(name)
        .description(Some(description))
        .build()
}

const DESCRIPTION: &str = "A helpdesk server. The intake routes speak osTicket's ticket-creation \
API (API.md); the staff routes under `/api/v1` are how agents work tickets (STAFF-API.md).";

const INTAKE_TAG: &str = "osTicket-compatible ticket intake (API.md). The format is taken from \
the path, never from `Content-Type`; every route is also served under `/api/http.php/`. \
`POST /api/tickets.<other format>` answers `415 Unsupported data format`; another method on a \
known path `405` with `Allow`; any other path `404`. Errors are text/plain, or the JSON envelope \
with `Accept: application/json`.";

// Doc-only operations of the queue routes (`http::staff::queue`, being
// written beside this branch): documented here from STAFF-API.md, to be
// moved onto the handlers, and these schemas replaced by derives on the
// queue's own wire types, when both branches meet.

/// `GET /api/v1/tickets`: the queue.
///
/// Filters, sort and an opaque cursor; what the agent may see (their
/// departments and the tickets assigned to them; everything for an admin).
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "staff",
    operation_id = "list_tickets",
    params(QueueParams),
    responses(
        (status = 200, description = "A page of the queue.", body = QueuePage),
        (status = 400, description = "A filter, sort, limit or cursor that cannot be read (named in `field`)."),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
#[allow(dead_code)] // Documentation only.
fn queue_list() {}

/// `GET /api/v1/queues`: counts for the side bar.
///
/// "Today" starts at midnight in the helpdesk's time zone.
#[utoipa::path(
    get,
    path = "/api/v1/queues",
    tag = "staff",
    operation_id = "queue_counts",
    responses(
        (status = 200, description = "The counts.", body = QueueCounts),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
#[allow(dead_code)] // Documentation only.
fn queue_counts() {}

/// The query of `GET /api/v1/tickets` (STAFF-API.md, Tickets).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documentation only.
struct QueueParams {
    /// `open` (default), `resolved`, `closed` or `any`.
    #[param(schema_with = schema::status_filter)]
    status: Option<String>,
    /// A department id.
    department: Option<i64>,
    /// `me`, `none` or an agent id.
    #[param(example = "me")]
    assignee: Option<String>,
    /// A help topic id.
    topic: Option<i64>,
    /// A priority id.
    priority: Option<i64>,
    /// Full-text search: words, `prefix*`, `"a phrase"`, `-excluded`, or a
    /// ticket number. Results are ranked by relevance, then recency.
    q: Option<String>,
    /// `-updated` (default; relevance first with `q`), `updated`,
    /// `-created`, `created`, `-priority`, `number`.
    #[param(schema_with = schema::queue_sort)]
    sort: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of the queue.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only.
struct QueuePage {
    tickets: Vec<TicketSummary>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A summary row of the queue.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only.
struct TicketSummary {
    #[schema(example = "123456")]
    number: String,
    subject: String,
    #[schema(schema_with = schema::ticket_status)]
    status: String,
    priority: NamedJson<'static>,
    #[schema(required = true)]
    department: Option<NamedJson<'static>>,
    #[schema(required = true)]
    topic: Option<NamedJson<'static>>,
    #[schema(required = true)]
    assignee: Option<NamedJson<'static>>,
    user: PartyJson<'static>,
    #[schema(format = DateTime)]
    created: String,
    #[schema(format = DateTime)]
    updated: String,
    #[schema(format = DateTime)]
    last_message_at: String,
    /// Thread entries.
    entries: i64,
}

/// The side bar's counts.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only.
struct QueueCounts {
    open_by_department: Vec<DepartmentCount>,
    /// Open tickets assigned to the agent.
    mine: i64,
    /// Open tickets assigned to nobody.
    unassigned: i64,
    resolved_today: i64,
    closed_today: i64,
}

/// Open tickets of one department.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only.
struct DepartmentCount {
    id: i64,
    name: String,
    count: i64,
}

/// Schemas of the closed sets of names, made from the domain's own lists
/// so that a new value shows up in the document.
pub(crate) mod schema {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    use crate::domain::views::{EntryKind, MailEvent, MailKind, MailState, Source, TicketStatus};
    use crate::intake::BodyFormat;

    fn names<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .build()
    }

    /// `open`, `resolved`, `closed`.
    pub fn ticket_status() -> Object {
        names(TicketStatus::ALL.iter().map(|s| s.as_str()))
    }

    /// The queue's `status` filter: a status or `any`.
    pub fn status_filter() -> Object {
        names(TicketStatus::ALL.iter().map(|s| s.as_str()).chain(["any"]))
    }

    /// The queue's sorts.
    pub fn queue_sort() -> Object {
        names([
            "-updated",
            "updated",
            "-created",
            "created",
            "-priority",
            "number",
        ])
    }

    /// `API`, `Email`, `Phone`, `Web`, `Other`.
    pub fn source() -> Object {
        names(Source::ALL.iter().map(|s| s.as_str()))
    }

    /// `message`, `response`, `note`.
    pub fn entry_kind() -> Object {
        names(EntryKind::ALL.iter().map(|s| s.as_str()))
    }

    /// `text`, `html`.
    pub fn body_format() -> Object {
        names([BodyFormat::Text.as_str(), BodyFormat::Html.as_str()])
    }

    /// `autoresponse`, `alert`, `response`.
    pub fn mail_kind() -> Object {
        names(MailKind::ALL.iter().map(|s| s.as_str()))
    }

    /// `new`, `reply`.
    pub fn mail_event() -> Object {
        names([MailEvent::New.as_str(), MailEvent::Reply.as_str()])
    }

    /// `queued`, `sending`, `sent`, `failed`.
    pub fn mail_state() -> Object {
        names(MailState::ALL.iter().map(|s| s.as_str()))
    }

    /// `agent`, `user`, `system`.
    pub fn actor_kind() -> Object {
        names(["agent", "user", "system"])
    }
}
