//! The queue routes (STAFF-API.md): `GET /api/v1/tickets` (filters,
//! sorts, cursor, `q`) and `GET /api/v1/queues` (the side bar's counts),
//! with their JSON. Parsing is `domain::queue`'s; what the viewer may see
//! is applied by the store.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::auth::Staff;
use crate::app::AppState;
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery, QueueRow, start_of_day};
use crate::domain::views::{Named, format_time};
use crate::error::ApiError;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/queues", get(counts))
}

/// `GET /api/v1/tickets`: a page of the queue.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = pairs
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {e}")))?;
    let query = QueueQuery::parse(&pairs)?;
    let page = state.store.list_queue(&staff.agent, &query).await?;
    json(&PageJson::from(&page))
}

/// `GET /api/v1/queues`: the side bar's counts; "today" starts at
/// midnight in the helpdesk's time zone (`timezone`, UTC by default).
pub async fn counts(State(state): State<AppState>, staff: Staff) -> Result<Response, ApiError> {
    let today = start_of_day(jiff::Timestamp::now(), &state.catalog.tz);
    let counts = state.store.queue_counts(&staff.agent, today).await?;
    json(&CountsJson::from(&counts))
}

fn json(value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_string(value)
        .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A page: `{"tickets": [summary…], "next_cursor": "…" | null}`.
#[derive(Debug, Serialize)]
struct PageJson<'a> {
    tickets: Vec<RowJson<'a>>,
    next_cursor: Option<&'a str>,
}

/// A summary row (STAFF-API.md, A summary row).
#[derive(Debug, Serialize)]
struct RowJson<'a> {
    number: &'a str,
    subject: &'a str,
    status: &'static str,
    priority: NamedJson<'a>,
    department: Option<NamedJson<'a>>,
    topic: Option<NamedJson<'a>>,
    assignee: Option<NamedJson<'a>>,
    user: UserJson<'a>,
    created: String,
    updated: String,
    last_message_at: String,
    entries: i64,
}

#[derive(Debug, Serialize)]
struct NamedJson<'a> {
    id: i64,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct UserJson<'a> {
    name: &'a str,
    email: &'a str,
}

impl<'a> From<&'a Named> for NamedJson<'a> {
    fn from(n: &'a Named) -> Self {
        NamedJson {
            id: n.id,
            name: &n.name,
        }
    }
}

impl<'a> From<&'a QueueRow> for RowJson<'a> {
    fn from(r: &'a QueueRow) -> Self {
        RowJson {
            number: r.number.as_str(),
            subject: &r.subject,
            status: r.status.as_str(),
            priority: (&r.priority).into(),
            department: r.department.as_ref().map(Into::into),
            topic: r.topic.as_ref().map(Into::into),
            assignee: r.assignee.as_ref().map(Into::into),
            user: UserJson {
                name: &r.user_name,
                email: &r.user_email,
            },
            created: format_time(r.created),
            updated: format_time(r.updated),
            last_message_at: format_time(r.last_message_at),
            entries: r.entries,
        }
    }
}

impl<'a> From<&'a QueuePage> for PageJson<'a> {
    fn from(p: &'a QueuePage) -> Self {
        PageJson {
            tickets: p.rows.iter().map(Into::into).collect(),
            next_cursor: p.next_cursor.as_deref(),
        }
    }
}

/// The counts: `{"open_by_department": [{"id", "name", "count"}], "mine",
/// "unassigned", "resolved_today", "closed_today"}`.
#[derive(Debug, Serialize)]
struct CountsJson<'a> {
    open_by_department: Vec<DeptCountJson<'a>>,
    mine: i64,
    unassigned: i64,
    resolved_today: i64,
    closed_today: i64,
}

#[derive(Debug, Serialize)]
struct DeptCountJson<'a> {
    id: i64,
    name: &'a str,
    count: i64,
}

impl<'a> From<&'a QueueCounts> for CountsJson<'a> {
    fn from(c: &'a QueueCounts) -> Self {
        CountsJson {
            open_by_department: c
                .open_by_department
                .iter()
                .map(|(id, name, count)| DeptCountJson {
                    id: *id,
                    name,
                    count: *count,
                })
                .collect(),
            mine: c.mine,
            unassigned: c.unassigned,
            resolved_today: c.resolved_today,
            closed_today: c.closed_today,
        }
    }
}
