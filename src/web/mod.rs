//! The staff web interface at `/scp/` (issue 14): server-rendered pages
//! (minijinja, the mail's engine; templates embedded and compiled at
//! start-up, HTML auto-escaped), progressive enhancement with vendored
//! htmx, every form a plain POST answered by 303. Pages call the same
//! `domain` use cases as the staff API; nothing here decides a rule.
//!
//! Security: the session cookie ([`session`]), a CSRF token on every
//! state-changing request, the headers of [`security_headers`] on every
//! `/scp/` answer, no inline script or style, customer HTML sanitised
//! again when shown ([`html`]).

#![expect(
    clippy::result_large_err,
    reason = "a page handler's error is the page to answer with; it is built once per request, never in a loop"
)]

pub mod admin;
pub mod assets;
pub mod html;
pub mod login;
pub mod queue;
pub mod recent;
pub mod session;
pub mod ticket;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use minijinja::Environment;
use serde::Serialize;

use crate::app::AppState;
use crate::config::WebConfig;
use crate::domain::catalog::Catalog;
use crate::domain::staff::Agent;
use crate::intake::html::escape;
use crate::storage::StoreError;
use session::WebStaff;

/// `Content-Security-Policy` of every page (contract: no inline script
/// or style, nothing from another host, no framing).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The templates, in the order they are compiled.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("queue.html", include_str!("templates/queue.html")),
    ("queue_rows.html", include_str!("templates/queue_rows.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("admin_keys.html", include_str!("templates/admin_keys.html")),
    (
        "admin_agents.html",
        include_str!("templates/admin_agents.html"),
    ),
    (
        "admin_outbox.html",
        include_str!("templates/admin_outbox.html"),
    ),
];

/// The pages' settings and compiled templates, built once at start-up.
pub struct Web {
    env: Environment<'static>,
    /// The session cookie is `Secure`.
    pub secure_cookies: bool,
    /// The queue's refresh interval.
    pub poll_secs: u64,
    /// The side bar's counts, kept a moment.
    pub counts: recent::Recent<queue::CountsKey, crate::domain::queue::QueueCounts>,
    /// The agents (the assignee control), kept a moment.
    pub agents: recent::Recent<(), Vec<Agent>>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("secure_cookies", &self.secure_cookies)
            .field("poll_secs", &self.poll_secs)
            .finish_non_exhaustive()
    }
}

impl Web {
    /// Compiles every template; an error names the template.
    pub fn new(config: &WebConfig) -> Result<Self, String> {
        let mut env = Environment::new();
        // `.html` names get HTML auto-escaping (minijinja's default rule).
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("web template {name}: {e}"))?;
        }
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // minijinja's HTML escaping also escapes `/`, which makes every
        // URL in an attribute three times longer than it needs to be;
        // `&`, `<`, `>`, `"` and `'` are all HTML needs.
        env.set_formatter(
            |out, state, value| match (state.auto_escape(), value.as_str()) {
                (minijinja::AutoEscape::Html, Some(text)) if !value.is_safe() => {
                    out.write_str(&escape(text))?;
                    Ok(())
                }
                _ => minijinja::escape_formatter(out, state, value),
            },
        );
        Ok(Self {
            env,
            secure_cookies: config.secure_cookies,
            poll_secs: config.poll_secs,
            counts: recent::Recent::new(config.counts_max_age_ms),
            agents: recent::Recent::new(config.counts_max_age_ms),
        })
    }

    /// Renders a template; a failure is a 500 page (logged).
    pub fn render(&self, name: &str, ctx: impl Serialize) -> Result<String, Response> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| {
                tracing::error!(template = name, error = %format!("{e:#}"), "page rendering failed");
                error_page(StatusCode::INTERNAL_SERVER_ERROR, "The page could not be rendered.")
            })
    }
}

/// The web routes (merged into the application's router).
pub fn routes(state: &AppState) -> Router<AppState> {
    let body_limit = usize::try_from(state.limits.max_request_body_bytes).unwrap_or(usize::MAX);
    let scp = Router::new()
        .route("/scp/login", get(login::form).post(login::submit))
        .route("/scp/logout", post(login::logout))
        .route("/scp/", get(queue::page))
        .route("/scp", get(|| async { see_other("/scp/") }))
        .route("/scp/tickets", get(queue::page))
        .route("/scp/rows", get(queue::rows))
        .route("/scp/tickets/{number}", get(ticket::page))
        .route("/scp/tickets/{number}/reply", post(ticket::reply))
        .route("/scp/tickets/{number}/note", post(ticket::note))
        .route("/scp/tickets/{number}/update", post(ticket::update))
        .route("/scp/attachments/{id}", get(ticket::attachment))
        .route("/scp/admin/keys", get(admin::keys).post(admin::key_add))
        .route("/scp/admin/keys/{id}/revoke", post(admin::key_revoke))
        .route(
            "/scp/admin/agents",
            get(admin::agents).post(admin::agent_add),
        )
        .route("/scp/admin/agents/{id}/{action}", post(admin::agent_action))
        .route("/scp/admin/outbox", get(admin::outbox))
        .route("/scp/admin/outbox/{id}/retry", post(admin::outbox_retry))
        .route("/scp/static/{hash}/{name}", get(assets::serve))
        // Unknown pages under /scp/ are HTML too (the API's fallback is JSON).
        .route("/scp/{*rest}", any(scp_not_found))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::map_response(security_headers));
    Router::new()
        .route("/", get(|| async { see_other("/scp/") }))
        .merge(scp)
}

async fn scp_not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "No such page.")
}

/// The headers every `/scp/` answer carries; pages are never cached
/// (static files set their own `Cache-Control`).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// An HTML page with `status`.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A bare error page (no layout: it is also what a request without an
/// agent gets): `.flash.error` with `message`.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · oxidesk</title><link rel=\"stylesheet\" href=\"{}\"></head><body><main id=\"main\" class=\"bare\"><h1>{}</h1><p class=\"flash error\" role=\"alert\">{}</p><p><a href=\"/scp/\">Back to the queue</a></p></main></body></html>\n",
            status.as_u16(),
            assets::url("style.css"),
            escape(status.canonical_reason().unwrap_or("Error")),
            escape(message)
        ),
    )
}

/// The status a store failure is shown with: busy is 503, anything else 500.
pub fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A store failure as a page (logged once, here).
pub fn store_failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "store failed while serving a page");
    error_page(
        store_status(&e),
        "The helpdesk could not complete this; try again.",
    )
}

/// `403`: a state-changing request without this session's CSRF token.
pub fn csrf_refused() -> Response {
    error_page(StatusCode::FORBIDDEN, "CSRF token missing or invalid")
}

/// `404` (an admin page for a non-admin, a ticket the agent may not see).
pub fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "No such page.")
}

/// A message shown at the top of a page.
#[derive(Debug, Clone, Serialize)]
pub struct Flash {
    /// `ok`, `error` or `conflict` (its CSS class).
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

impl Flash {
    /// A success.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            text: text.into(),
        }
    }
    /// A failure.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

/// One link of the queue navigation.
#[derive(Debug, Clone, Serialize)]
pub struct NavQueue {
    /// `open`, `mine`, `dept-<id>`…
    pub key: String,
    /// Shown name.
    pub label: String,
    /// Its count.
    pub count: i64,
}

/// What the layout of every signed-in page needs.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// Page title.
    pub title: String,
    /// The agent's name.
    pub agent_name: String,
    /// Admin links shown.
    pub is_admin: bool,
    /// The CSRF token (forms and the meta tag).
    pub csrf: String,
    /// The queue links with counts.
    pub nav: Vec<NavQueue>,
    /// The queue shown, if any (`aria-current`).
    pub current: String,
    /// Messages.
    pub flashes: Vec<Flash>,
    /// Stylesheet URL.
    pub css: String,
    /// htmx URL.
    pub htmx: String,
    /// app.js URL.
    pub app_js: String,
}

impl Layout {
    /// The layout for `staff`, with the queue counts.
    pub async fn new(
        state: &AppState,
        staff: &WebStaff,
        title: impl Into<String>,
        current: &str,
    ) -> Result<Self, Response> {
        let nav = queue::nav(state, &staff.agent).await?;
        Ok(Self {
            title: title.into(),
            agent_name: staff.agent.name.clone(),
            is_admin: staff.agent.admin,
            csrf: staff.csrf.clone(),
            nav,
            current: current.to_string(),
            flashes: Vec::new(),
            css: assets::url("style.css"),
            htmx: assets::url("htmx.min.js"),
            app_js: assets::url("app.js"),
        })
    }

    /// Adds a message.
    pub fn flash(mut self, flash: Flash) -> Self {
        self.flashes.push(flash);
        self
    }
}

/// Departments by id, for selects.
pub fn departments(catalog: &Catalog) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = catalog
        .departments
        .values()
        .map(|d| (d.id, d.name.clone()))
        .collect();
    out.sort();
    out
}

/// A time as pages show it: the helpdesk's zone, to the minute.
pub fn show_time(t: jiff::Timestamp, catalog: &Catalog) -> String {
    t.to_zoned(catalog.tz.clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// Only admins: anyone else gets `404` (the page's existence is not revealed).
pub fn require_admin(agent: &Agent) -> Result<(), Response> {
    if agent.admin {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A form's fields, in order (repeated names kept: multi-selects).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// Refuses (403) a request without the session's CSRF token in the
/// `csrf` field or the `X-CSRF-Token` header.
pub fn check_csrf(
    staff: &WebStaff,
    headers: &axum::http::HeaderMap,
    fields: &Fields,
) -> Result<(), Response> {
    if staff.csrf_ok(headers, fields.get("csrf")) {
        Ok(())
    } else {
        tracing::warn!(agent.id = %staff.agent.id, client.address = %staff.client, "form refused: CSRF token missing or invalid");
        Err(csrf_refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        Web::new(&WebConfig::default()).unwrap();
    }
}
