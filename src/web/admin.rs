//! Admin pages (admins only; anyone else gets `404`): API keys (a new
//! key is shown once), agents (a generated password is shown once;
//! disable, enable, reset) and the outbox (failed and queued mail,
//! retry). They do what the `key`, `agent` and `outbox` commands do,
//! through the same store operations and domain checks.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::session::WebStaff;
use super::{Fields, Flash, Layout, check_csrf, departments, html, require_admin, see_other};
use crate::app::AppState;
use crate::domain::agents::{self, Password};
use crate::domain::ids::{ApiKeyId, EmailAddress};
use crate::domain::keys::{ApiKeySecret, parse_network};
use crate::domain::staff::AgentId;
use crate::storage::{NewAgent, NewApiKey, StoreError};

/// `?done=` after an action.
#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_flash(done: &Done) -> Option<Flash> {
    Some(Flash::ok(match done.done.as_deref()? {
        "revoked" => "Key revoked.",
        "disabled" => "Agent disabled; their sessions are ended.",
        "enabled" => "Agent enabled.",
        "retried" => "Mail queued again.",
        _ => return None,
    }))
}

fn page(state: &AppState, status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
    match state.web.render(name, ctx) {
        Ok(body) => html(status, body),
        Err(r) => r,
    }
}

// ---- API keys

#[derive(Serialize)]
struct KeyRow {
    id: i64,
    prefix: String,
    active: bool,
    can_create: bool,
    can_read: bool,
    addresses: String,
    notes: String,
    created: String,
}

#[derive(Serialize)]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    new_key: Option<String>,
    form: KeyForm,
}

#[derive(Serialize, Default)]
struct KeyForm {
    ip: String,
    can_create: bool,
    can_read: bool,
    notes: String,
}

async fn keys_page(
    state: &AppState,
    staff: &WebStaff,
    status: StatusCode,
    flash: Option<Flash>,
    new_key: Option<String>,
    form: KeyForm,
) -> Response {
    let layout = match Layout::new(state, staff, "API keys", "").await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let layout = match flash {
        Some(f) => layout.flash(f),
        None => layout,
    };
    let keys = match state.store.list_api_keys().await {
        Ok(k) => k,
        Err(e) => return super::store_failed(e),
    };
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            id: k.id.0,
            prefix: k.prefix,
            active: k.is_active,
            can_create: k.can_create,
            can_read: k.can_read,
            addresses: k
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            notes: k.notes,
            created: k.created,
        })
        .collect();
    page(
        state,
        status,
        "admin_keys.html",
        KeysPage {
            layout,
            keys,
            new_key,
            form,
        },
    )
}

/// `GET /scp/admin/keys`.
pub async fn keys(
    State(state): State<AppState>,
    staff: WebStaff,
    Query(done): Query<Done>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    let form = KeyForm {
        can_create: true,
        ..KeyForm::default()
    };
    keys_page(
        &state,
        &staff,
        StatusCode::OK,
        done_flash(&done),
        None,
        form,
    )
    .await
}

/// `POST /scp/admin/keys` (`ip`, `can_create`, `can_read`, `notes`): the
/// new key is shown on the answer, once (it is stored hashed).
pub async fn key_add(
    State(state): State<AppState>,
    staff: WebStaff,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    let fields = Fields(fields);
    if let Err(r) = check_csrf(&staff, &headers, &fields) {
        return r;
    }
    let form = KeyForm {
        ip: fields.get("ip").unwrap_or("").to_string(),
        can_create: fields.checked("can_create"),
        can_read: fields.checked("can_read"),
        notes: fields.get("notes").unwrap_or("").trim().to_string(),
    };
    let mut addresses = Vec::new();
    for item in form
        .ip
        .split([',', '\n', '\r', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match parse_network(item) {
            Some(net) => addresses.push(net),
            None => {
                let flash =
                    Flash::error(format!("ip: {item:?} is not an IP address or CIDR range"));
                return keys_page(
                    &state,
                    &staff,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(flash),
                    None,
                    form,
                )
                .await;
            }
        }
    }
    if addresses.is_empty() {
        let flash = Flash::error("ip: at least one address or range is required");
        return keys_page(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(flash),
            None,
            form,
        )
        .await;
    }
    let secret = ApiKeySecret::generate();
    let added = state
        .store
        .add_api_key(NewApiKey {
            hash: secret.hash(),
            prefix: secret.prefix(),
            addresses,
            can_create: form.can_create,
            can_read: form.can_read,
            notes: form.notes.clone(),
            created: crate::domain::views::format_time(jiff::Timestamp::now()),
        })
        .await;
    match added {
        Ok(id) => {
            tracing::info!(agent.id = %staff.agent.id, key.id = %id.0, "API key {} created (web)", id.0);
            let flash = Flash::ok(format!(
                "Key {} created. It is shown only now: copy it.",
                id.0
            ));
            let blank = KeyForm {
                can_create: true,
                ..KeyForm::default()
            };
            keys_page(
                &state,
                &staff,
                StatusCode::OK,
                Some(flash),
                Some(secret.expose().to_string()),
                blank,
            )
            .await
        }
        Err(e) => super::store_failed(e),
    }
}

/// `POST /scp/admin/keys/{id}/revoke`.
pub async fn key_revoke(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    if let Err(r) = check_csrf(&staff, &headers, &Fields(fields)) {
        return r;
    }
    match state.store.revoke_api_key(ApiKeyId(id)).await {
        Ok(()) => {
            tracing::info!(agent.id = %staff.agent.id, key.id = id, "API key {id} revoked (web)");
            see_other("/scp/admin/keys?done=revoked")
        }
        Err(StoreError::NotFound) => super::not_found(),
        Err(e) => super::store_failed(e),
    }
}

// ---- agents

#[derive(Serialize)]
struct AgentRow {
    id: i64,
    email: String,
    name: String,
    admin: bool,
    active: bool,
    departments: String,
    is_self: bool,
}

#[derive(Serialize)]
struct DeptChoice {
    id: i64,
    name: String,
    selected: bool,
}

#[derive(Serialize, Default)]
struct AgentForm {
    email: String,
    name: String,
    admin: bool,
}

#[derive(Serialize)]
struct AgentsPage {
    layout: Layout,
    agents: Vec<AgentRow>,
    departments: Vec<DeptChoice>,
    new_password: Option<NewPassword>,
    form: AgentForm,
}

#[derive(Serialize)]
struct NewPassword {
    email: String,
    password: String,
}

async fn agents_page(
    state: &AppState,
    staff: &WebStaff,
    status: StatusCode,
    flash: Option<Flash>,
    new_password: Option<NewPassword>,
    form: AgentForm,
    chosen: &[i64],
) -> Response {
    let layout = match Layout::new(state, staff, "Agents", "").await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let layout = match flash {
        Some(f) => layout.flash(f),
        None => layout,
    };
    let list = match state.store.list_agents().await {
        Ok(a) => a,
        Err(e) => return super::store_failed(e),
    };
    let agents = list
        .into_iter()
        .map(|a| AgentRow {
            departments: a
                .departments
                .iter()
                .map(|d| {
                    state
                        .catalog
                        .departments
                        .get(d)
                        .map(|n| n.name.clone())
                        .unwrap_or_else(|| format!("{d} (not configured)"))
                })
                .collect::<Vec<_>>()
                .join(", "),
            is_self: a.id == staff.agent.id,
            id: a.id.0,
            email: a.email,
            name: a.name,
            admin: a.admin,
            active: a.active,
        })
        .collect();
    let departments = departments(&state.catalog)
        .into_iter()
        .map(|(id, name)| DeptChoice {
            selected: chosen.contains(&id),
            id,
            name,
        })
        .collect();
    page(
        state,
        status,
        "admin_agents.html",
        AgentsPage {
            layout,
            agents,
            departments,
            new_password,
            form,
        },
    )
}

/// `GET /scp/admin/agents`.
pub async fn agents(
    State(state): State<AppState>,
    staff: WebStaff,
    Query(done): Query<Done>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    agents_page(
        &state,
        &staff,
        StatusCode::OK,
        done_flash(&done),
        None,
        AgentForm::default(),
        &[],
    )
    .await
}

/// `POST /scp/admin/agents` (`email`, `name`, `admin`, `departments`…):
/// the generated password is shown on the answer, once.
pub async fn agent_add(
    State(state): State<AppState>,
    staff: WebStaff,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    let fields = Fields(fields);
    if let Err(r) = check_csrf(&staff, &headers, &fields) {
        return r;
    }
    let form = AgentForm {
        email: fields.get("email").unwrap_or("").trim().to_string(),
        name: fields.get("name").unwrap_or("").trim().to_string(),
        admin: fields.checked("admin"),
    };
    let mut chosen = Vec::new();
    for d in fields.all("departments") {
        match d.trim().parse::<i64>() {
            Ok(id) => chosen.push(id),
            Err(_) => {
                let flash = Flash::error("departments: not an id");
                return agents_page(
                    &state,
                    &staff,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(flash),
                    None,
                    form,
                    &[],
                )
                .await;
            }
        }
    }
    let refuse = |text: String| Flash::error(text);
    let email = match EmailAddress::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            let flash = refuse(format!("email: {e}"));
            return agents_page(
                &state,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(flash),
                None,
                form,
                &chosen,
            )
            .await;
        }
    };
    if form.name.is_empty() {
        let flash = refuse("name: must not be empty".into());
        return agents_page(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(flash),
            None,
            form,
            &chosen,
        )
        .await;
    }
    let departments = match agents::check_departments(&state.catalog, &chosen) {
        Ok(d) => d,
        Err(e) => {
            let flash = refuse(e.to_string());
            return agents_page(
                &state,
                &staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(flash),
                None,
                form,
                &chosen,
            )
            .await;
        }
    };
    let password = Password::generate();
    let hash = match agents::hash_password(password.clone()).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "password hashing failed");
            return super::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The password could not be set.",
            );
        }
    };
    let added = state
        .store
        .add_agent(NewAgent {
            email: email.as_str().to_string(),
            name: form.name.clone(),
            password_hash: hash,
            admin: form.admin,
            departments,
            created: crate::domain::views::format_time(jiff::Timestamp::now()),
        })
        .await;
    match added {
        Ok(id) => {
            tracing::info!(agent.id = %staff.agent.id, new_agent.id = %id, "agent {id} created (web)");
            let shown = NewPassword {
                email: email.as_str().to_string(),
                password: password.expose().to_string(),
            };
            let flash = Flash::ok(format!(
                "Agent {} created. The password is shown only now: pass it on.",
                email.as_str()
            ));
            agents_page(
                &state,
                &staff,
                StatusCode::OK,
                Some(flash),
                Some(shown),
                AgentForm::default(),
                &[],
            )
            .await
        }
        Err(StoreError::Conflict(_)) => {
            let flash = refuse(format!(
                "email: an agent with email {} already exists",
                email.as_str()
            ));
            agents_page(
                &state,
                &staff,
                StatusCode::CONFLICT,
                Some(flash),
                None,
                form,
                &chosen,
            )
            .await
        }
        Err(e) => super::store_failed(e),
    }
}

/// `POST /scp/admin/agents/{id}/{disable|enable|password}`.
pub async fn agent_action(
    State(state): State<AppState>,
    staff: WebStaff,
    Path((id, action)): Path<(i64, String)>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    if let Err(r) = check_csrf(&staff, &headers, &Fields(fields)) {
        return r;
    }
    let target = AgentId(id);
    let found = match state.store.find_agent(target).await {
        Ok(Some(a)) => a,
        Ok(None) => return super::not_found(),
        Err(e) => return super::store_failed(e),
    };
    match action.as_str() {
        "disable" | "enable" => {
            let active = action == "enable";
            if !active && target == staff.agent.id {
                let flash = Flash::error("You cannot disable your own account.");
                return agents_page(
                    &state,
                    &staff,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(flash),
                    None,
                    AgentForm::default(),
                    &[],
                )
                .await;
            }
            match state.store.set_agent_active(target, active).await {
                Ok(()) => {
                    tracing::info!(agent.id = %staff.agent.id, target.id = id, active, "agent {id} {action}d (web)");
                    see_other(&format!("/scp/admin/agents?done={action}d"))
                }
                Err(StoreError::NotFound) => super::not_found(),
                Err(e) => super::store_failed(e),
            }
        }
        "password" => {
            let password = Password::generate();
            let hash = match agents::hash_password(password.clone()).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "password hashing failed");
                    return super::error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The password could not be set.",
                    );
                }
            };
            match state.store.set_agent_password(target, hash).await {
                Ok(()) => {
                    tracing::info!(agent.id = %staff.agent.id, target.id = id, "agent {id}: password reset (web)");
                    let shown = NewPassword {
                        email: found.email.clone(),
                        password: password.expose().to_string(),
                    };
                    let flash = Flash::ok(format!(
                        "New password for {}; their sessions are ended. It is shown only now.",
                        found.email
                    ));
                    agents_page(
                        &state,
                        &staff,
                        StatusCode::OK,
                        Some(flash),
                        Some(shown),
                        AgentForm::default(),
                        &[],
                    )
                    .await
                }
                Err(StoreError::NotFound) => super::not_found(),
                Err(e) => super::store_failed(e),
            }
        }
        _ => super::not_found(),
    }
}

// ---- outbox

#[derive(Serialize)]
struct OutboxRow {
    id: i64,
    number: String,
    kind: String,
    event: String,
    state: String,
    attempts: i64,
    recipients: String,
    error: String,
    failed: bool,
}

#[derive(Serialize)]
struct OutboxPage {
    layout: Layout,
    rows: Vec<OutboxRow>,
}

/// How many rows of each state the page lists.
const OUTBOX_ROWS: u32 = 200;

/// `GET /scp/admin/outbox`: failed mail, then queued.
pub async fn outbox(
    State(state): State<AppState>,
    staff: WebStaff,
    Query(done): Query<Done>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    let layout = match Layout::new(&state, &staff, "Outbox", "").await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let layout = match done_flash(&done) {
        Some(f) => layout.flash(f),
        None => layout,
    };
    let mut rows = Vec::new();
    for wanted in ["failed", "queued"] {
        let list = match state
            .store
            .list_outbox(Some(wanted.to_string()), OUTBOX_ROWS)
            .await
        {
            Ok(l) => l,
            Err(e) => return super::store_failed(e),
        };
        rows.extend(list.into_iter().map(|r| OutboxRow {
            id: r.id,
            number: r.number.as_str().to_string(),
            kind: r.notification.kind.as_str().to_string(),
            event: r.notification.event.as_str().to_string(),
            state: r.notification.state.as_str().to_string(),
            attempts: r.notification.attempts,
            recipients: r.notification.recipients.join(", "),
            error: r.notification.last_error.clone().unwrap_or_default(),
            failed: wanted == "failed",
        }));
    }
    page(
        &state,
        StatusCode::OK,
        "admin_outbox.html",
        OutboxPage { layout, rows },
    )
}

/// `POST /scp/admin/outbox/{id}/retry`.
pub async fn outbox_retry(
    State(state): State<AppState>,
    staff: WebStaff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = require_admin(&staff.agent) {
        return r;
    }
    if let Err(r) = check_csrf(&staff, &headers, &Fields(fields)) {
        return r;
    }
    match state
        .store
        .retry_outbox(id, jiff::Timestamp::now().as_second())
        .await
    {
        Ok(()) => {
            state.intake.stored();
            tracing::info!(agent.id = %staff.agent.id, outbox.id = id, "outbox row {id} queued again (web)");
            see_other("/scp/admin/outbox?done=retried")
        }
        Err(StoreError::NotFound) => super::not_found(),
        Err(e) => super::store_failed(e),
    }
}
