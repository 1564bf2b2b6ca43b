//! The queue page: Open, Mine, Unassigned, each department, Resolved
//! and Closed (with the side bar's counts), the search box (the staff
//! API's `q` syntax), filters, sort and cursor pagination, all through
//! `domain::queue` and `QueueStore` like `GET /api/v1/tickets`. The rows
//! are also served alone (`/scp/rows`) for htmx to refresh them every
//! `[web] poll_secs` without a reload.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::session::{WebStaff, encode_query};
use super::{Fields, Flash, Layout, NavQueue, html, show_time};
use crate::app::AppState;
use crate::domain::queue::{QueueCounts, QueueQuery, QueueRow, Sort, start_of_day};
use crate::domain::staff::Agent;

/// Whose counts: the permission rule's inputs, and the day.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CountsKey {
    agent: i64,
    admin: bool,
    departments: Vec<i64>,
    today: jiff::Timestamp,
}

/// The agent's counts (kept a moment: `super::recent`).
async fn counts(state: &AppState, agent: &Agent) -> Result<QueueCounts, Response> {
    let today = start_of_day(jiff::Timestamp::now(), &state.catalog.tz);
    let key = CountsKey {
        agent: agent.id.0,
        admin: agent.admin,
        departments: agent.departments.clone(),
        today,
    };
    state
        .web
        .counts
        .get_or_read(state, key, async {
            state
                .store
                .queue_counts(agent, today)
                .await
                .map_err(super::store_failed)
        })
        .await
}

/// The navigation's queues with their counts (as `GET /api/v1/queues`;
/// Open is the sum of the departments' open counts).
pub async fn nav(state: &AppState, agent: &Agent) -> Result<Vec<NavQueue>, Response> {
    let counts = counts(state, agent).await?;
    let open: i64 = counts.open_by_department.iter().map(|(_, _, n)| n).sum();
    let q = |key: &str, label: &str, count: i64| NavQueue {
        key: key.into(),
        label: label.into(),
        count,
    };
    let mut out = vec![
        q("open", "Open", open),
        q("mine", "Mine", counts.mine),
        q("unassigned", "Unassigned", counts.unassigned),
    ];
    // Every configured department (the contract's `dept-<id>`), with
    // the count the store found for it (none: 0).
    for (id, name) in super::departments(&state.catalog) {
        let count = counts
            .open_by_department
            .iter()
            .find(|(d, _, _)| *d == id)
            .map_or(0, |(_, _, n)| *n);
        out.push(q(&format!("dept-{id}"), &name, count));
    }
    out.push(q("resolved", "Resolved today", counts.resolved_today));
    out.push(q("closed", "Closed today", counts.closed_today));
    Ok(out)
}

/// The queue a `queue=` names, as the API's filters.
fn queue_filters(queue: &str) -> Option<Vec<(&'static str, String)>> {
    let open = ("status", "open".to_string());
    Some(match queue {
        "open" => vec![open],
        "mine" => vec![open, ("assignee", "me".into())],
        "unassigned" => vec![open, ("assignee", "none".into())],
        "resolved" => vec![("status", "resolved".into())],
        "closed" => vec![("status", "closed".into())],
        other => {
            let id: i64 = other.strip_prefix("dept-")?.parse().ok()?;
            vec![open, ("department", id.to_string())]
        }
    })
}

/// What the page was asked for.
struct Asked {
    queue: String,
    q: String,
    sort: String,
    priority: String,
    topic: String,
    cursor: String,
}

impl Asked {
    fn of(fields: &Fields) -> Self {
        let get = |n: &str| fields.get(n).unwrap_or("").trim().to_string();
        let queue = get("queue");
        Self {
            queue: if queue.is_empty() {
                "open".into()
            } else {
                queue
            },
            q: get("q"),
            sort: get("sort"),
            priority: get("priority"),
            topic: get("topic"),
            cursor: get("cursor"),
        }
    }

    /// The query string of this page without the cursor.
    fn base(&self) -> String {
        let mut s = format!("queue={}", encode_query(&self.queue));
        for (name, v) in [
            ("q", &self.q),
            ("sort", &self.sort),
            ("priority", &self.priority),
            ("topic", &self.topic),
        ] {
            if !v.is_empty() {
                s.push_str(&format!("&{name}={}", encode_query(v)));
            }
        }
        s
    }

    fn query(&self) -> Result<QueueQuery, String> {
        let mut pairs: Vec<(String, String)> = queue_filters(&self.queue)
            .ok_or_else(|| format!("queue: no queue {:?}", self.queue))?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (name, v) in [
            ("q", &self.q),
            ("sort", &self.sort),
            ("priority", &self.priority),
            ("topic", &self.topic),
            ("cursor", &self.cursor),
        ] {
            if !v.is_empty() {
                pairs.push((name.into(), v.clone()));
            }
        }
        QueueQuery::parse(&pairs).map_err(|e| e.to_string())
    }
}

#[derive(Serialize)]
struct RowCtx {
    number: String,
    subject: String,
    user: String,
    user_email: String,
    status: &'static str,
    priority: String,
    department: String,
    assignee: String,
    updated: String,
    updated_iso: String,
}

fn row_ctx(r: &QueueRow, state: &AppState) -> RowCtx {
    RowCtx {
        number: r.number.as_str().to_string(),
        subject: r.subject.clone(),
        user: r.user_name.clone(),
        user_email: r.user_email.clone(),
        status: r.status.as_str(),
        priority: r.priority.name.clone(),
        department: r
            .department
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        assignee: r
            .assignee
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        updated: show_time(r.updated, &state.catalog),
        updated_iso: crate::domain::views::format_time(r.updated),
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct QueuePage {
    layout: Layout,
    heading: String,
    queue: String,
    q: String,
    sorts: Vec<Choice>,
    priorities: Vec<Choice>,
    topics: Vec<Choice>,
    rows: Vec<RowCtx>,
    next: Option<String>,
    first: Option<String>,
    rows_url: String,
    poll_secs: u64,
}

async fn load(
    state: &AppState,
    agent: &Agent,
    asked: &Asked,
) -> Result<(Vec<RowCtx>, Option<String>), Result<String, Response>> {
    let query = asked.query().map_err(Ok)?;
    let page = state
        .store
        .list_queue(agent, &query)
        .await
        .map_err(|e| Err(super::store_failed(e)))?;
    let rows = page.rows.iter().map(|r| row_ctx(r, state)).collect();
    Ok((rows, page.next_cursor))
}

fn choices(items: Vec<(String, String)>, current: &str) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

/// `GET /scp/` and `GET /scp/tickets?queue=…&q=…&sort=…&cursor=…`.
pub async fn page(
    State(state): State<AppState>,
    staff: WebStaff,
    Query(fields): Query<Vec<(String, String)>>,
) -> Response {
    let asked = Asked::of(&Fields(fields));
    let mut layout = match Layout::new(&state, &staff, "Queue", &asked.queue).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let heading = layout
        .nav
        .iter()
        .find(|n| n.key == asked.queue)
        .map(|n| n.label.clone())
        .unwrap_or_else(|| "Queue".into());
    layout.title = heading.clone();
    let (status, rows, next) = match load(&state, &staff.agent, &asked).await {
        Ok((rows, next)) => (StatusCode::OK, rows, next),
        Err(Ok(message)) => {
            layout = layout.flash(Flash::error(message));
            (StatusCode::BAD_REQUEST, Vec::new(), None)
        }
        Err(Err(r)) => return r,
    };
    let base = asked.base();
    let mut sorts = vec![(
        String::new(),
        if asked.q.is_empty() {
            "Last updated"
        } else {
            "Best match"
        }
        .to_string(),
    )];
    sorts.extend(Sort::NAMED.iter().map(|(name, _)| {
        let label = match *name {
            "-updated" => "Last updated first",
            "updated" => "Least recently updated",
            "-created" => "Newest first",
            "created" => "Oldest first",
            "-priority" => "Most urgent first",
            "number" => "Number",
            other => other,
        };
        (name.to_string(), label.to_string())
    }));
    let mut priorities: Vec<(i64, String)> = state
        .catalog
        .priorities
        .values()
        .map(|p| (p.id, p.name.clone()))
        .collect();
    priorities.sort();
    let mut topics: Vec<(i64, String)> = state
        .catalog
        .topics
        .values()
        .map(|t| (t.named.id, t.named.name.clone()))
        .collect();
    topics.sort();
    let any = |label: &str| vec![(String::new(), label.to_string())];
    let ctx = QueuePage {
        heading,
        queue: asked.queue.clone(),
        q: asked.q.clone(),
        sorts: choices(sorts, &asked.sort),
        priorities: choices(
            any("Any priority")
                .into_iter()
                .chain(priorities.into_iter().map(|(i, n)| (i.to_string(), n)))
                .collect(),
            &asked.priority,
        ),
        topics: choices(
            any("Any topic")
                .into_iter()
                .chain(topics.into_iter().map(|(i, n)| (i.to_string(), n)))
                .collect(),
            &asked.topic,
        ),
        rows,
        next: next.map(|c| format!("/scp/tickets?{base}&cursor={}", encode_query(&c))),
        first: (!asked.cursor.is_empty()).then(|| format!("/scp/tickets?{base}")),
        rows_url: if asked.cursor.is_empty() {
            format!("/scp/rows?{base}")
        } else {
            format!("/scp/rows?{base}&cursor={}", encode_query(&asked.cursor))
        },
        poll_secs: state.web.poll_secs,
        layout,
    };
    match state.web.render("queue.html", ctx) {
        Ok(body) => html(status, body),
        Err(r) => r,
    }
}

#[derive(Serialize)]
struct RowsFragment {
    rows: Vec<RowCtx>,
}

/// `GET /scp/rows?…`: the rows alone (htmx swaps them into
/// `tbody#queue-rows`).
pub async fn rows(
    State(state): State<AppState>,
    staff: WebStaff,
    Query(fields): Query<Vec<(String, String)>>,
) -> Response {
    let asked = Asked::of(&Fields(fields));
    let rows = match load(&state, &staff.agent, &asked).await {
        Ok((rows, _)) => rows,
        Err(Ok(message)) => return super::error_page(StatusCode::BAD_REQUEST, &message),
        Err(Err(r)) => return r,
    };
    match state.web.render("queue_rows.html", RowsFragment { rows }) {
        Ok(body) => html(StatusCode::OK, body),
        Err(r) => r,
    }
}
