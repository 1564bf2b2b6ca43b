//! Who is calling: the [`Staff`] extractor (a Bearer token, session or
//! personal, looked up by its SHA-256) and the session routes
//! (STAFF-API.md, Agents and sign-in):
//!
//! * `POST /api/v1/session` `{"email", "password"}` → `201`
//!   `{"token", "expires_at", "agent"}`; every wrong address, password or
//!   disabled agent is the same `401 Invalid email or password`; while
//!   the account or the client address is throttled, `429` with
//!   `Retry-After`.
//! * `DELETE /api/v1/session` (Bearer: a session) → `204`.
//! * `GET /api/v1/me` → the agent.
//!
//! Sign-in failures are logged with the client address and the address
//! typed; never a password, a token or a hash.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Serialize;

use crate::app::AppState;
use crate::domain::agents::{Password, SignInError, TokenKind};
use crate::domain::catalog::Catalog;
use crate::domain::staff::Agent;
use crate::domain::views::format_time;
use crate::error::ApiError;
use crate::http::client::client_addr;

/// Largest sign-in body read (an address and a password).
const MAX_SIGN_IN_BODY_BYTES: usize = 16 * 1024;

/// The session routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(create_session).delete(end_session))
        .route("/api/v1/me", get(me))
}

/// A request made by a signed-in, active agent.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The agent.
    pub agent: Agent,
    /// The client's address (the trusted-proxy rule applied).
    pub client: IpAddr,
}

/// The token of `Authorization: Bearer <token>`, if one is given.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer_in(&parts.headers)
}

/// The token of `Authorization: Bearer <token>` in `headers`.
pub fn bearer_in(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// SHA-256 of a token's secret: how tokens are stored and looked up.
pub fn token_hash(token: &str) -> [u8; 32] {
    crate::domain::agents::token_hash(token)
}

/// `401`, asking for a Bearer token.
pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Authentication required")
}

/// The client's address of a request (the trusted-proxy rule applied).
pub fn client_of(parts: &Parts, state: &AppState) -> Result<IpAddr, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
        .ok_or_else(|| {
            ApiError::internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                &"no peer address: the router was served without connect info",
            )
        })?;
    client_addr(peer, &parts.headers, &state.trusted_proxies).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).with_field("X-Forwarded-For")
    })
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts, state)?;
        let token = bearer_token(parts).ok_or_else(unauthorized)?;
        let now = jiff::Timestamp::now().as_second();
        let agent = state
            .store
            .agent_by_token(token_hash(token), now)
            .await?
            .filter(|a| a.active)
            .ok_or_else(unauthorized)?;
        Ok(Self { agent, client })
    }
}

/// The client's address, for a route that has no agent yet (sign-in).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        client_of(parts, state).map(Client)
    }
}

/// A department as the staff API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Department)]
pub struct DepartmentJson<'a> {
    id: i64,
    name: &'a str,
}

/// An agent as the staff API shows it: `{"id", "email", "name", "admin",
/// "departments": [{"id", "name"}]}`. Departments the configuration no
/// longer has are left out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Agent)]
pub struct AgentJson<'a> {
    id: i64,
    #[schema(format = Email)]
    email: &'a str,
    name: &'a str,
    /// An admin sees and does everything.
    admin: bool,
    /// The departments whose tickets the agent sees.
    departments: Vec<DepartmentJson<'a>>,
}

impl<'a> AgentJson<'a> {
    /// The agent, department names from the configuration.
    pub fn new(agent: &'a Agent, catalog: &'a Catalog) -> Self {
        Self {
            id: agent.id.0,
            email: &agent.email,
            name: &agent.name,
            admin: agent.admin,
            departments: agent
                .departments
                .iter()
                .filter_map(|id| catalog.departments.get(id))
                .map(|d| DepartmentJson {
                    id: d.id,
                    name: &d.name,
                })
                .collect(),
        }
    }
}

/// A new session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
struct SessionJson<'a> {
    /// The Bearer token (shown once; stored hashed).
    token: &'a str,
    /// When it expires unless used (sliding expiry).
    #[schema(value_type = String, format = DateTime)]
    expires_at: String,
    agent: AgentJson<'a>,
}

/// `status` with a JSON body.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_string(body)
        .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A sign-in request's fields.
struct Credentials {
    email: String,
    password: String,
}

/// Reads `{"email": "...", "password": "..."}`: `413` past the cap,
/// `400` for a body that is not a JSON object, `422` naming the field
/// that is missing or not a string.
async fn read_credentials(body: Body) -> Result<Credentials, ApiError> {
    let bytes = match http_body_util::Limited::new(body, MAX_SIGN_IN_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is over the limit of {MAX_SIGN_IN_BODY_BYTES} bytes"),
            ));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            ));
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("request body: not valid JSON: {e}"),
        )
    })?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request body: expected a JSON object {\"email\", \"password\"}",
        ));
    };
    let mut field = |name: &str| match object.remove(name) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name}: must be a string"),
        )
        .with_field(name)),
        None => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name}: is required"),
        )
        .with_field(name)),
    };
    Ok(Credentials {
        email: field("email")?,
        password: field("password")?,
    })
}

/// What a log line may show of a typed address: at most 100 characters,
/// `Debug`-escaped by the caller (it is the client's text).
fn loggable(email: &str) -> String {
    email.trim().chars().take(100).collect()
}

/// The body of `POST /api/v1/session` (read by hand by
/// `read_credentials`; this type only describes it).
#[derive(utoipa::ToSchema)]
#[schema(as = SignIn)]
#[allow(dead_code)] // A schema only.
struct SignInSchema {
    #[schema(format = Email)]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// The session routes' operations (`http::openapi` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_session, end_session, me))]
pub struct AuthDoc;

/// Sign in
///
/// An agent's email and password for a session token. Every wrong
/// address, password or disabled agent is the same `401`; repeated
/// failures from one address or for one account are throttled.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "staff",
    operation_id = "sign_in",
    request_body = SignInSchema,
    responses(
        (status = 201, description = "Signed in.", body = SessionJson),
        (status = 400, description = "The body is not a JSON object, or `X-Forwarded-For` from a trusted proxy cannot be read."),
        (status = 401, description = "`Invalid email or password`."),
        (status = 413, description = "The body is over 16 KiB."),
        (status = 422, description = "`email` or `password` missing or not a string (named in `field`)."),
        (status = 429, description = "Too many failures for this account or from this address.",
            headers(("Retry-After" = u64, description = "Seconds until the next attempt may be made."))),
        (status = 503, description = "The store is busy."),
    ),
)]
async fn create_session(
    State(state): State<AppState>,
    Client(client): Client,
    body: Body,
) -> Result<Response, ApiError> {
    let credentials = read_credentials(body).await?;
    let now = jiff::Timestamp::now().as_second();
    let outcome = state
        .sign_in
        .sign_in(
            state.store.as_ref(),
            &credentials.email,
            Password::presented(credentials.password),
            client,
            now,
        )
        .await;
    let session = match outcome {
        Ok(session) => session,
        Err(SignInError::Throttled(locked)) => {
            tracing::warn!(
                client.address = %client,
                account = ?loggable(&credentials.email),
                retry_after_secs = locked.retry_after_secs,
                "sign-in refused: too many failures"
            );
            let mut response = ApiError::from(SignInError::Throttled(locked)).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(locked.retry_after_secs),
            );
            return Ok(response);
        }
        Err(SignInError::Invalid) => {
            tracing::warn!(
                client.address = %client,
                account = ?loggable(&credentials.email),
                "sign-in failed"
            );
            return Err(SignInError::Invalid.into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        agent.id = %session.agent.id,
        client.address = %client,
        "agent {} signed in",
        session.agent.id
    );
    let expires_at = jiff::Timestamp::from_second(session.expires_at)
        .map(format_time)
        .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    json_response(
        StatusCode::CREATED,
        &SessionJson {
            token: session.token.expose(),
            expires_at,
            agent: AgentJson::new(&session.agent, &state.catalog),
        },
    )
}

/// Sign out
///
/// `DELETE /api/v1/session`: ends the session the request is made with.
/// A personal token is not a session: it is refused (`400`) rather than
/// revoked, so that a script's sign-out cannot destroy its token.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "staff",
    operation_id = "sign_out",
    responses(
        (status = 204, description = "The session is ended."),
        (status = 400, description = "The token is a personal access token, not a session (`field`: `Authorization`)."),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn end_session(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer_in(&headers).ok_or_else(unauthorized)?;
    let ended = state
        .store
        .delete_agent_token(token_hash(token), TokenKind::Session)
        .await?;
    if !ended {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Not a session: personal access tokens are not ended by signing out",
        )
        .with_field("Authorization"));
    }
    tracing::info!(
        agent.id = %staff.agent.id,
        client.address = %staff.client,
        "agent {} signed out",
        staff.agent.id
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The signed-in agent
///
/// `GET /api/v1/me`.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "staff",
    operation_id = "me",
    responses(
        (status = 200, description = "The agent.", body = AgentJson),
        (status = 401, description = "No token, or an unknown or expired one: `Authentication required`."),
        (status = 503, description = "The store is busy."),
    ),
    security(("bearerAuth" = [])),
)]
async fn me(State(state): State<AppState>, staff: Staff) -> Result<Response, ApiError> {
    json_response(
        StatusCode::OK,
        &AgentJson::new(&staff.agent, &state.catalog),
    )
}
